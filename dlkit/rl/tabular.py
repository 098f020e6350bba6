"""Tabular agents of chapter 9 for discrete gymnasium environments: Q-learning and SARSA.

Pure NumPy: the action-value function is a table `q_table` of shape (num_states, num_actions),
one row per state of a `gymnasium.spaces.Discrete` observation space (FrozenLake, CliffWalking,
Taxi). Both agents act ε-greedily and learn online, one temporal-difference (TD) update per
environment step, with no replay buffer:

- `QLearning`: off-policy, the target takes the best next action [notes §9.1.1, eq. 9.8];
- `SARSA`: on-policy, the target takes the next action actually chosen [notes §9.1.3,
  eq. 9.19], or with `expected=True` its expectation under the ε-greedy policy.

`evaluate(agent, env)` plays greedy episodes with any agent that has `act(observation,
explore=False)`, tabular or deep.

Terminated versus truncated: gymnasium reports two ways an episode can end. `terminated` means
the MDP reached a terminal state (FrozenLake's goal or a hole, CliffWalking's goal), whose value
is 0, so the target is the reward alone (the case "T" of the ε-greedy Q-learning algorithm in
notes §9.1.1). `truncated` means a time limit cut the episode: the state reached still has a
future, so the target still bootstraps from Q(s', ·). Cutting the bootstrap there would make
the table believe that whatever state the clock happened to stop in is worthless.

Exploration: ε decays linearly with environment steps, from `epsilon` to `epsilon_final` over
`epsilon_decay_steps` steps, then stays at `epsilon_final` ("decrement ε" in notes §9.1.1).
The greedy action of an ε-greedy step breaks ties uniformly at random: the table starts at 0,
and on FrozenLake, whose only reward is the goal's 1, a fixed lowest-index tie-break would send
every unexplored state the same way (left) for thousands of steps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import numpy as np

from dlkit.rl.saving import (
    generator_from_json,
    generator_to_json,
    npz_path,
    read_saved_object,
    write_verified,
)
from dlkit.validation import check_int, check_number, check_unit_interval

__all__ = ["SARSA", "QLearning", "evaluate"]

# Episodes averaged in the progress line's moving average of returns.
_RETURN_WINDOW = 100


def _check_discrete_space(name: str, space: object) -> int:
    from gymnasium.spaces import Discrete

    if not isinstance(space, Discrete) or int(space.start) != 0:
        raise ValueError(
            f"Expected {name} to be a gymnasium.spaces.Discrete space starting at 0 "
            f"(a tabular agent indexes its table by it). Received: {name}={space!r}"
        )
    return int(space.n)


def evaluate(
    agent, env, episodes: int = 10, seed: int = 0, max_episode_steps: int = 10_000
) -> float:
    """Mean undiscounted return of `episodes` greedy episodes of `agent` on `env`.

    Works with any agent that has `act(observation, explore=False)`. Episode i starts from
    `env.reset(seed=seed + i)`, so a given seed always plays the same start states. An episode
    ends when the environment terminates or truncates it, or after `max_episode_steps` steps,
    a guard for environments without a time limit (CliffWalking-v1), where a greedy policy that
    walks in circles would otherwise never end.

    Equation:

        mean_return = (1 / episodes) · Σ_episode Σ_t reward_t     (undiscounted, notes eq. 9.1)
        action_t = agent.act(observation_t, explore=False)

    Args:
        agent: an object with `act(observation, explore=False)` returning an action.
        env: a gymnasium environment.
        episodes: the number of episodes (a positive integer). Defaults to 10.
        seed: the seed of the first episode's reset. Defaults to 0.
        max_episode_steps: the longest episode played. Defaults to 10,000.

    Returns:
        The mean return over the episodes, a float.

    Example:

        >>> import gymnasium as gym
        >>> env = gym.make("FrozenLake-v1", is_slippery=False)
        >>> agent = QLearning.from_env(env, seed=0)
        >>> agent.q_table[[0, 4, 8, 9, 13, 14], [1, 1, 2, 1, 2, 2]] = 1.0  # down, down, right, ...
        >>> evaluate(agent, env, episodes=3)
        1.0

    Reference:
        Sutton & Barto, "Reinforcement Learning: An Introduction", 2nd ed. 2018, §3.3 (return).
    """
    episodes = check_int("episodes", episodes)
    max_episode_steps = check_int("max_episode_steps", max_episode_steps)
    returns = []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        episode_return = 0.0
        for _ in range(max_episode_steps):
            action = agent.act(observation, explore=False)
            observation, reward, terminated, truncated, _ = env.step(action)
            episode_return += float(reward)
            if terminated or truncated:
                break
        returns.append(episode_return)
    return float(np.mean(returns))


class _TabularAgent:
    """The table, ε-greedy policy, training loop and checkpoints shared by both agents."""

    def __init__(
        self,
        num_states: int,
        num_actions: int,
        learning_rate: float = 0.1,
        gamma: float = 0.99,
        epsilon: float = 1.0,
        epsilon_final: float = 0.05,
        epsilon_decay_steps: int = 10_000,
        seed: int | None = None,
    ) -> None:
        self.num_states = check_int("num_states", num_states)
        self.num_actions = check_int("num_actions", num_actions)
        self.learning_rate = check_number("learning_rate", learning_rate, 0, 1, low_open=True)
        self.gamma = check_unit_interval("gamma", gamma)
        self.epsilon = check_unit_interval("epsilon", epsilon)
        self.epsilon_final = check_unit_interval("epsilon_final", epsilon_final)
        self.epsilon_decay_steps = check_int("epsilon_decay_steps", epsilon_decay_steps)
        self.seed = None if seed is None else check_int("seed", seed, minimum=0)
        self._rng = np.random.default_rng(self.seed)
        self.q_table = np.zeros((self.num_states, self.num_actions), np.float64)
        self.num_timesteps = 0
        self.num_episodes = 0
        self.episode_returns: list[float] = []
        self.episode_lengths: list[int] = []

    @classmethod
    def from_env(cls, env, **kwargs):
        """Builds the agent for `env`'s Discrete observation and action spaces."""
        num_states = _check_discrete_space("env.observation_space", env.observation_space)
        num_actions = _check_discrete_space("env.action_space", env.action_space)
        return cls(num_states, num_actions, **kwargs)

    def _config(self) -> dict:
        return {
            "num_states": self.num_states,
            "num_actions": self.num_actions,
            "learning_rate": self.learning_rate,
            "gamma": self.gamma,
            "epsilon": self.epsilon,
            "epsilon_final": self.epsilon_final,
            "epsilon_decay_steps": self.epsilon_decay_steps,
            "seed": self.seed,
        }

    # ------------------------------------------------------------------ policy

    @property
    def current_epsilon(self) -> float:
        """ε after `num_timesteps` environment steps of the linear schedule."""
        progress = min(1.0, self.num_timesteps / self.epsilon_decay_steps)
        return self.epsilon + progress * (self.epsilon_final - self.epsilon)

    def _check_state(self, state) -> int:
        if not 0 <= int(state) < self.num_states:
            raise ValueError(f"Expected state in [0, {self.num_states}). Received: state={state!r}")
        return int(state)

    def act(self, state, explore: bool = True) -> int:
        """The action in `state`: ε-greedy if `explore`, else greedy (lowest index on ties).

        The greedy action of an exploring step breaks ties at random with the agent's
        generator; `explore=False` never draws from it, so evaluating does not change how
        learning continues, and equals `greedy_policy()[state]`.
        """
        state = self._check_state(state)
        values = self.q_table[state]
        if not explore:
            return int(np.argmax(values))
        if self._rng.random() < self.current_epsilon:
            return int(self._rng.integers(self.num_actions))
        best = np.flatnonzero(values == values.max())
        return int(best[0] if best.size == 1 else best[self._rng.integers(best.size)])

    def greedy_policy(self) -> np.ndarray:
        """The greedy action of every state, shape (num_states,) int64 (lowest index on ties)."""
        return np.argmax(self.q_table, axis=1).astype(np.int64)

    def evaluate(self, env, episodes: int = 10, seed: int = 0) -> float:
        """Mean return of `episodes` greedy episodes on `env` (module-level `evaluate`)."""
        return evaluate(self, env, episodes=episodes, seed=seed)

    # ------------------------------------------------------------------ learning

    def _uses_next_action(self) -> bool:
        """Whether the target needs the next action taken (on-policy SARSA)."""
        return False

    def update(
        self,
        state: int,
        action: int,
        reward: float,
        next_state: int,
        terminated: bool,
        next_action: int | None = None,
    ) -> float:
        """One TD update of `q_table[state, action]`; returns the TD error before the update."""
        state = self._check_state(state)
        action = int(action)
        if not 0 <= action < self.num_actions:
            raise ValueError(
                f"Expected action in [0, {self.num_actions}). Received: action={action!r}"
            )
        next_state = self._check_state(next_state)
        next_value = 0.0 if terminated else self._next_value(next_state, next_action)
        target = float(reward) + self.gamma * next_value
        td_error = target - self.q_table[state, action]
        self.q_table[state, action] += self.learning_rate * td_error
        return float(td_error)

    def learn(
        self,
        env,
        total_timesteps: int,
        verbose: int = 0,
        log_interval: int = 100,
        callback: Callable | None = None,
    ):
        """Trains on `env` for `total_timesteps` more environment steps; returns the agent.

        Every episode starts from `env.reset(seed=...)` with a seed drawn from the agent's
        generator, so the agent's seed fixes the whole run and a checkpoint resumes it exactly,
        even on slippery ice. The episode running when the budget ends is dropped from
        `episode_returns`; the next call starts a new one. With `verbose`, a line every
        `log_interval` episodes gives the mean return of the last 100 episodes, ε and the
        steps per second. `callback(agent)` runs after every episode; returning `False` stops.
        """
        total_timesteps = check_int("total_timesteps", total_timesteps)
        log_interval = check_int("log_interval", log_interval)
        on_policy = self._uses_next_action()
        start_time = time.perf_counter()
        start_steps = self.num_timesteps
        steps_done = 0
        while steps_done < total_timesteps:
            state, _ = env.reset(seed=int(self._rng.integers(2**31)))
            action = self.act(state)
            episode_return, episode_length = 0.0, 0
            while steps_done < total_timesteps:
                next_state, reward, terminated, truncated, _ = env.step(action)
                self.num_timesteps += 1
                steps_done += 1
                episode_return += float(reward)
                episode_length += 1
                # SARSA picks its next action before the update: the target uses that action.
                next_action = self.act(next_state) if on_policy and not terminated else None
                self.update(state, action, reward, next_state, terminated, next_action)
                if terminated or truncated:
                    break
                state = next_state
                action = next_action if on_policy else self.act(state)
            else:
                break  # the budget ended inside the episode
            self.num_episodes += 1
            self.episode_returns.append(episode_return)
            self.episode_lengths.append(episode_length)
            if verbose and self.num_episodes % log_interval == 0:
                seconds = time.perf_counter() - start_time
                print(
                    f"episode {self.num_episodes} | steps {self.num_timesteps} | "
                    f"return (last {_RETURN_WINDOW}) "
                    f"{np.mean(self.episode_returns[-_RETURN_WINDOW:]):.3f} | "
                    f"epsilon {self.current_epsilon:.3f} | "
                    f"{(self.num_timesteps - start_steps) / max(seconds, 1e-9):.0f} steps/s",
                    flush=True,
                )
            if callback is not None and callback(self) is False:
                break
        return self

    # ------------------------------------------------------------------ checkpoints

    def save(self, path: str) -> str:
        """Writes the table, counters, returns and generator state to `path` (`.npz`),
        atomically and with an integrity record, as an agent checkpoint
        (`dlkit.rl.saving.write_verified`).

        Returns the path written (`.npz` is appended when missing).
        """
        config = {"class": type(self).__name__, **self._config()}
        return write_verified(
            npz_path(path),
            {
                "config": np.array(json.dumps(config)),
                "rng_state": np.array(generator_to_json(self._rng)),
                "q_table": self.q_table,
                "num_timesteps": np.array(self.num_timesteps, np.int64),
                "num_episodes": np.array(self.num_episodes, np.int64),
                "episode_returns": np.array(self.episode_returns, np.float64),
                "episode_lengths": np.array(self.episode_lengths, np.int64),
            },
        )

    @classmethod
    def load(cls, path: str):
        """Rebuilds an agent saved by `save`; learning then continues exactly as it would have.

        The file is checked against its integrity record and read whole (no pickle) before
        the agent is built; a table of another shape or with NaN or infinite values is refused.
        """
        config, state = read_saved_object(path, cls)
        agent = cls(**config)
        table = state["q_table"]
        if table.shape != agent.q_table.shape or not np.all(np.isfinite(table)):
            raise ValueError(
                f"Expected a finite Q-table of shape {agent.q_table.shape}. "
                f"Received: path={str(path)!r} holding {table.dtype} of shape {table.shape}"
            )
        rng = generator_from_json(str(state["rng_state"]))
        agent.q_table[...] = table
        agent.num_timesteps = int(state["num_timesteps"])
        agent.num_episodes = int(state["num_episodes"])
        agent.episode_returns = [float(value) for value in state["episode_returns"]]
        agent.episode_lengths = [int(value) for value in state["episode_lengths"]]
        agent._rng = rng
        return agent


class QLearning(_TabularAgent):
    """Tabular Q-learning with an ε-greedy behaviour policy.

    Off-policy TD control: after each step (s, a, r, s') the entry Q(s, a) moves a fraction
    `learning_rate` of the way to the one-step target built with the best next action,
    whatever the ε-greedy policy will really do next [notes §9.1.1]. The table therefore
    converges to the optimal Q* (eq. 9.7), and the greedy policy to the optimal policy, even
    while the agent keeps exploring. `learn` runs the ε-greedy algorithm of §9.1.1 online: one
    update per step on the transition just seen (the notes' version replays minibatches, the
    step that leads to DQN).

    Equation:

        next_value = 0 if terminated else max_a' q_table[next_state, a']
        td_error = reward + gamma · next_value − q_table[state, action]
        q_table[state, action] ← q_table[state, action] + learning_rate · td_error
        [notes eq. 9.8 and the ε-greedy Q-learning algorithm of §9.1.1]

        current_epsilon = epsilon + min(1, num_timesteps / epsilon_decay_steps)
                          · (epsilon_final − epsilon)

    Args:
        num_states: the number of states (rows of the table), a positive integer.
        num_actions: the number of actions (columns of the table), a positive integer.
        learning_rate: the step size α in (0, 1]. Defaults to 0.1.
        gamma: the discount factor γ in [0, 1]. Defaults to 0.99.
        epsilon: ε at step 0, in [0, 1]. Defaults to 1.0 (all random, as in the notes).
        epsilon_final: ε after `epsilon_decay_steps` steps, in [0, 1]. Defaults to 0.05.
        epsilon_decay_steps: environment steps of the linear decay. Defaults to 10,000.
        seed: integer seed of exploration, tie-breaks and episode resets. Defaults to `None`.

    Returns:
        An agent whose `q_table` (num_states, num_actions) float64 starts at 0. Methods:
        `act(state, explore=True)`, `update(state, action, reward, next_state, terminated,
        next_action=None)` (one TD update, returns the TD error; `next_action` is unused),
        `learn(env, total_timesteps, verbose=0, log_interval=100, callback=None)`,
        `greedy_policy()` (num_states,), `evaluate(env, episodes=10, seed=0)`, `save(path)`,
        `QLearning.load(path)`, `QLearning.from_env(env, **kwargs)`; counters `num_timesteps`,
        `num_episodes`, `episode_returns`, `current_epsilon`.

    Example:

        >>> agent = QLearning(num_states=3, num_actions=2, learning_rate=0.5, gamma=0.9, seed=0)
        >>> agent.q_table.shape
        (3, 2)
        >>> agent.q_table[1] = [1.0, 2.0]
        >>> agent.update(state=0, action=1, reward=1.0, next_state=1, terminated=False)
        2.8
        >>> float(agent.q_table[0, 1])
        1.4
        >>> import gymnasium as gym
        >>> env = gym.make("FrozenLake-v1", is_slippery=False)
        >>> agent = QLearning.from_env(env, learning_rate=0.5, epsilon_decay_steps=2_000, seed=0)
        >>> agent.learn(env, total_timesteps=3_000).evaluate(env)
        1.0

    Reference:
        Watkins & Dayan, "Q-learning", Machine Learning 1992; Sutton & Barto, "Reinforcement
        Learning: An Introduction", 2nd ed. 2018, §6.5.
    """

    def _next_value(self, next_state: int, next_action: int | None) -> float:
        return float(self.q_table[next_state].max())


class SARSA(_TabularAgent):
    """Tabular SARSA (and Expected SARSA) with an ε-greedy policy.

    On-policy TD control: the target of Q(s_t, a_t) uses the action a_{t+1} the ε-greedy policy
    actually takes in s_{t+1}, so each update needs the five items (s, a, r, s', a') that give
    the method its name [notes §9.1.3]. The table converges to the value of the ε-greedy policy
    itself, exploration included. On CliffWalking, where an exploratory step from the edge
    costs −100, SARSA therefore prefers a path away from the cliff while ε is large, where
    Q-learning learns the shortest path along its edge. With `expected=True` the target uses
    the mean of Q(s', ·) under the ε-greedy policy instead of one sampled a', which removes the
    variance of that draw (Expected SARSA).

    Equation:

        next_value = 0 if terminated else q_table[next_state, next_action]
        (expected=True: next_value = Σ_a' π(a' | next_state) · q_table[next_state, a'],
         π(a' | s) = current_epsilon / num_actions
                     + (1 − current_epsilon) · [a' greedy in s] / (number of greedy actions))
        td_error = reward + gamma · next_value − q_table[state, action]
        q_table[state, action] ← q_table[state, action] + learning_rate · td_error
        [notes eq. 9.19; its printed form drops the discount γ, which is restored here]

    Args:
        num_states: the number of states (rows of the table), a positive integer.
        num_actions: the number of actions (columns of the table), a positive integer.
        learning_rate: the step size α in (0, 1]. Defaults to 0.1.
        gamma: the discount factor γ in [0, 1]. Defaults to 0.99.
        epsilon: ε at step 0, in [0, 1]. Defaults to 1.0.
        epsilon_final: ε after `epsilon_decay_steps` steps, in [0, 1]. Defaults to 0.05.
        epsilon_decay_steps: environment steps of the linear decay. Defaults to 10,000.
        seed: integer seed of exploration, tie-breaks and episode resets. Defaults to `None`.
        expected: use the Expected SARSA target. Defaults to `False`.

    Returns:
        An agent with the methods and counters of `QLearning`; `update` needs `next_action`
        unless `terminated` or `expected`. When an episode is truncated, `learn` bootstraps
        from the action the policy would take in the final state.

    Example:

        >>> agent = SARSA(num_states=3, num_actions=2, learning_rate=0.5, gamma=0.9, seed=0)
        >>> agent.q_table.shape
        (3, 2)
        >>> agent.q_table[1] = [1.0, 2.0]
        >>> agent.update(state=0, action=1, reward=1.0, next_state=1, terminated=False,
        ...              next_action=0)
        1.9

    Reference:
        Rummery & Niranjan, "On-line Q-learning using connectionist systems", 1994; van Seijen
        et al., "A theoretical and empirical analysis of Expected Sarsa", ADPRL 2009; Sutton &
        Barto 2018, §§6.4 and 6.6.
    """

    def __init__(
        self,
        num_states: int,
        num_actions: int,
        learning_rate: float = 0.1,
        gamma: float = 0.99,
        epsilon: float = 1.0,
        epsilon_final: float = 0.05,
        epsilon_decay_steps: int = 10_000,
        seed: int | None = None,
        expected: bool = False,
    ) -> None:
        super().__init__(
            num_states,
            num_actions,
            learning_rate=learning_rate,
            gamma=gamma,
            epsilon=epsilon,
            epsilon_final=epsilon_final,
            epsilon_decay_steps=epsilon_decay_steps,
            seed=seed,
        )
        if not isinstance(expected, bool):
            # A ValueError, as for the other arguments (check_type raises a TypeError).
            raise ValueError(f"Expected `expected` to be a bool. Received: expected={expected!r}")
        self.expected = expected

    def _config(self) -> dict:
        return {**super()._config(), "expected": self.expected}

    def _uses_next_action(self) -> bool:
        return not self.expected

    def _next_value(self, next_state: int, next_action: int | None) -> float:
        values = self.q_table[next_state]
        if self.expected:
            greedy = values == values.max()
            probabilities = np.full(self.num_actions, self.current_epsilon / self.num_actions)
            probabilities += (1.0 - self.current_epsilon) * greedy / greedy.sum()
            return float(probabilities @ values)
        if next_action is None:
            raise ValueError(
                "Expected next_action (the action taken in next_state) for a SARSA update that "
                "is not terminated. Received: next_action=None"
            )
        next_action = int(next_action)
        if not 0 <= next_action < self.num_actions:
            raise ValueError(
                f"Expected next_action in [0, {self.num_actions}). "
                f"Received: next_action={next_action!r}"
            )
        return float(values[next_action])
