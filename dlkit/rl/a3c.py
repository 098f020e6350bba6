"""Asynchronous advantage actor-critic (A3C) of notes §9.2.2: actor-learners in threads.

`num_workers` actor-learners run at once, one Python thread each, each on its own copy of
the environment (copy i of the vector environment `learn` receives) with its own random
stream and rollout buffer. Each repeats the loop of the notes' Algorithm S3: read the shared
parameters θ, θ_v into its local copy θ', θ'_v (clones of actor and critic; with the shared
version v they carry), take `n_steps` steps acting and bootstrapping with that copy, compute
the gradient of the A2C loss at its local copy
(`dlkit.training.compile_gradients`: one `jax.jit` on JAX, one `tf.function` on TensorFlow,
autograd on PyTorch), and apply it to the shared parameters with the shared RMSprop, without
waiting for the other workers. Meanwhile another worker may have applied its own update, so a
gradient computed at version v is often applied at a later version: stale gradients are part
of the algorithm. `update_versions` records, per applied update, (worker, version read,
version at apply).

Critical sections: Keras optimizers are not thread-safe, so the apply (a few hundred
microseconds, one compiled call) runs under the agent's lock, as do the reading of the local
copy with its version, the bookkeeping of each environment step (counters, episode returns)
and the claim of the next rollout's steps. Environment steps, acting and gradients run outside
it: no worker waits for another's environment or gradient.

The main thread keeps `learn`'s contract (progress bar, callbacks, evaluation, checkpoints):
each iteration it lets the workers run for `log_interval` steps (or up to the next evaluation
or checkpoint), then waits until each has finished its rollout in flight and parked, so that
logs, callbacks, evaluations and checkpoints see one consistent set of parameters. A
checkpoint holds the shared parameters, the optimizer, the counters, the shared version and
the agent's random generator; a resumed run starts new workers from it (their random streams
drawn from that generator), whose episodes start from a reset, as for the other agents.

Threads or processes, measured (`KERAS_BACKEND=jax OMP_NUM_THREADS=1 python
benchmarks/a3c_workers.py`, JSON; JAX, CartPole-v1, the `a3c_cartpole` networks, 9,155
parameters, on the shared 2-core development machine at a load average of about 3-4): a worker
process would pay 3.2 s to start and import keras and dlkit.rl (plus its own compilation),
then 0.10 ms per update to send the parameters and receive a gradient through a pipe; threads
pay neither. One thread ran 3,926 env steps/s, two threads 3,831: the environment steps and the
Python around them hold the interpreter lock, so on this machine the second thread buys no
throughput, and processes could (at the price of the start-up: 3.2 s are about 12,000
CartPole steps, near the 15,000 the fastest `a3c_cartpole` runs need to solve). Threads are the
choice here: no start-up, one compiled gradient function for every worker, parameters
shared in place; the asynchrony they give is the algorithm's (decorrelated, stale updates), not
a speed-up. Processes would be the choice for simulators that release the lock seldom and runs
long enough to repay their start.
"""

from __future__ import annotations

import dataclasses
import threading

import keras
import numpy as np

from dlkit.rl.envs import as_vector_env
from dlkit.rl.policy_gradient import A2C, A2CConfig, ActorCritic
from dlkit.validation import check_int

__all__ = ["A3C", "A3CConfig"]

# The worker the current thread runs, if any (`_PerWorker` attributes resolve to its state).
_THREAD = threading.local()


@dataclasses.dataclass
class A3CConfig(A2CConfig):
    """The hyperparameters of `A3C` (those of `A2CConfig`, with the shared RMSprop's
    `learning_rate`); the string under each field documents it."""

    num_workers: int = 2
    """Actor-learner threads, each on its own copy of the environment (the vector
    environment given to `learn` has this many copies)."""
    log_interval: int = 1_000
    """Environment steps of one `learn` iteration (logs, callbacks), during which the workers
    run without pausing; evaluations and checkpoints end an iteration earlier when due."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.num_workers = check_int("num_workers", self.num_workers)
        self.log_interval = check_int("log_interval", self.log_interval)
        if self.normalize_rewards:
            raise ValueError(
                "Expected normalize_rewards=False for A3C: the discounted-return statistics "
                "of reward scaling follow one stream of steps, not asynchronous workers. "
                "Received: normalize_rewards=True"
            )


class _PerWorker:
    """An attribute each worker thread of an `A3C` holds its own value of; the main thread
    reads and writes the agent's own. The inherited rollout code then runs unchanged in each
    worker, on that worker's environment, random stream and buffer."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, agent, owner=None):
        if agent is None:
            return self
        try:
            return _state_of(agent)[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, agent, value):
        _state_of(agent)[self.name] = value


def _state_of(agent) -> dict:
    worker = getattr(_THREAD, "worker", None)
    if worker is not None and worker.agent is agent:
        return worker.state
    return agent.__dict__.setdefault("_main_thread_state", {})


@dataclasses.dataclass(eq=False)
class _Worker:
    agent: A3C
    index: int
    env: object
    state: dict
    # The local copy: clones of actor and critic in one compiled acting call, and the
    # (shared variable, local variable) pairs that `_read_shared` copies.
    acting: object
    pairs: list
    thread: threading.Thread | None = None
    parked: bool = False


def _local_copy(agent: A3C) -> tuple:
    """Clones of the agent's actor and critic (same architecture, own variables) in one
    compiled acting call, and the (shared, local) variable pairs."""
    from dlkit.training import compile_inference

    actor = keras.models.clone_model(agent.actor)
    critic = keras.models.clone_model(agent.critic)
    inputs = keras.Input(agent._observation_shape, dtype=agent._observation_dtype)
    model = keras.Model(inputs, [actor(inputs), critic(inputs)], name="local_acting")
    pairs = list(zip(agent.actor.weights, actor.weights))
    pairs += list(zip(agent.critic.weights, critic.weights))
    return compile_inference(model), pairs


@keras.saving.register_keras_serializable(package="dlkit")
class A3C(A2C):
    """Asynchronous advantage actor-critic: workers apply n-step gradients to shared parameters.

    `num_workers` threads each play their own copy of the environment with a local copy of
    the parameters, compute the A2C loss's gradient on their `n_steps`-step rollout at that
    copy and apply it to the shared parameters with the shared RMSprop as soon as it is ready
    [notes §9.2.2, Algorithm S3]; the module docstring describes the threads, the critical
    sections and the measurement that chose threads over processes. `learn` takes a vector
    environment of `num_workers` copies (`make_vector_env(id, num_envs=num_workers)`, sync:
    worker i steps copy i), or one `gymnasium.Env` for a single worker.

    Equation:

        θ' ← θ, θ'_v ← θ_v                                       (worker reads version v)
        R = V(s_{t_max}; θ'_v) or 0 if terminal;  R ← r_i + γ R   for i = t_max − 1 … t_start
        dθ = −Σ_i ∇_θ' log π(a_i | s_i; θ') (R_i − V(s_i; θ'_v)) − c_H ∇_θ' H[π(· | s_i; θ')]
        dθ_v = c_v Σ_i ∇_θ'_v (R_i − V(s_i; θ'_v))²
        θ, θ_v ← RMSprop(θ, θ_v; dθ, dθ_v)                        (at the version then current)
        [notes §9.2.2, Algorithm S3; means instead of sums, as `A2C`; a rollout keeps its
         n_steps across an episode's end, where R starts again from 0 (or from V(final
         observation) after a truncation), instead of ending at the terminal state]

    Args:
        actor: a built model from observations to logits (B, n) or Gaussian means (B, D).
        critic: a built model from observations to values (B, 1).
        action_space: the gymnasium `Discrete` or one-dimensional `Box` action space.
        config: an `A3CConfig` (or a subclass, such as a recipe's `Config`) holding the
            hyperparameters, documented there. Defaults to `A3CConfig()`.
        **kwargs: fields of `A3CConfig` (`num_workers=4`), which override those of `config`,
            and other `keras.Model` arguments (`name`).

    Returns:
        An agent; `learn(env, total_timesteps)` trains it, `act(observations)` acts;
        `update_versions` lists the last run's updates as (worker, version read, version at
        apply).

    Example:

        >>> from dlkit.rl import make_vector_env
        >>> env = make_vector_env("CartPole-v1", num_envs=2)
        >>> agent = A3C.from_env(env, hidden_units=(16,), num_workers=2, seed=0)
        >>> agent.learn(env, total_timesteps=100, verbose=0).num_timesteps >= 100
        True

    Reference:
        Mnih et al., "Asynchronous Methods for Deep Reinforcement Learning", ICML 2016.
    """

    config_class = A3CConfig

    # Each worker's own: its random stream, rollout buffer, observations and episode records.
    _rng = _PerWorker()
    rollout = _PerWorker()
    _observations = _PerWorker()
    _episode_return = _PerWorker()
    _episode_length = _PerWorker()
    _true_scores = _PerWorker()

    def __init__(self, actor, critic, action_space, config=None, **kwargs):
        super().__init__(actor, critic, action_space, config, **kwargs)
        self._shared_lock = threading.Lock()
        self._condition = threading.Condition(self._shared_lock)
        self._workers: list[_Worker] = []
        self._version = 0
        self.update_versions: list[tuple[int, int, int]] = []
        self._gradients = None

    # ------------------------------------------------------------------ run

    def _setup_run(self, env):
        ActorCritic._setup_run(self, env)
        if env.num_envs != self.num_workers:
            raise ValueError(
                f"Expected an environment of num_envs == num_workers ({self.num_workers}) "
                f"copies, one per worker. Received: num_envs={env.num_envs}"
            )
        if env.num_envs > 1 and not hasattr(env, "envs"):
            raise ValueError(
                "Expected a synchronous vector environment (gymnasium SyncVectorEnv, as "
                "dlkit.rl.make_vector_env builds by default), whose copies `envs` the workers "
                f"step from their threads. Received: env={env!r}"
            )

    def _extra_state(self):
        return {"version": np.asarray(self._version, np.int64)}

    def _restore_extra_state(self, state):
        self._version = int(state.get("version", 0))

    def _on_run_start(self, env, resumed):
        del resumed
        copies = getattr(env, "envs", None) or [env]
        # Each worker's own stream, drawn from the agent's (restored) generator.
        seeds = self._rng.integers(2**63 - 1, size=self.num_workers)
        # Local copies are built once per agent and kept from run to run (compiled once).
        local = [(worker.acting, worker.pairs) for worker in self._workers]
        local += [_local_copy(self) for _ in range(self.num_workers - len(local))]
        self._workers = [
            _Worker(
                self,
                index,
                as_vector_env(copy),
                {"_rng": np.random.default_rng(seed)},
                *local[index],
            )
            for index, (copy, seed) in enumerate(zip(copies, seeds))
        ]
        self._claimed = self.num_timesteps
        self._target = self.num_timesteps
        self._stopping = False
        self._failure = None
        self._losses: list[float] = []
        self.update_versions = []
        if self._gradients is None:
            from dlkit.training import compile_gradients

            self._gradients = compile_gradients(self)
        self._warm_up()

    def _warm_up(self) -> None:
        """Traces the acting and gradient functions once, in this thread, before the workers
        call them from theirs."""
        steps = self.n_steps
        observations = np.zeros((steps, *self._observation_shape), self._observation_dtype)
        self._values(observations[:1])
        for worker in self._workers:
            worker.acting(observations[:1])
        zeros = np.zeros(steps, np.float32)
        batch = {
            "observations": observations,
            "actions": np.zeros((steps, *self.action_shape), "int64" if self.discrete else "f4"),
            "log_probs": zeros,
            "advantages": zeros,
            "returns": zeros,
        }
        self._gradients(self._gradients.snapshot(), observations, self._targets(batch, False))

    def learn(self, env, total_timesteps: int, *args, **kwargs):
        """Trains for `total_timesteps` steps with `num_workers` threads; `Agent.learn`'s
        arguments and contract. A worker whose environment raises stops the run with a
        RuntimeError naming the worker and the timestep; the other workers are stopped and
        joined, and the last checkpoint stays as it was. Returns the agent."""
        try:
            return super().learn(env, total_timesteps, *args, **kwargs)
        finally:
            self._stop_workers()

    def _collect_and_train(self, env) -> dict:
        del env
        with self._condition:
            if self._workers and self._workers[0].thread is None:
                for worker in self._workers:
                    worker.thread = threading.Thread(
                        target=self._work, args=(worker,), name=f"a3c-worker-{worker.index}"
                    )
                    worker.thread.daemon = True
                    worker.thread.start()
            self._target = min(self._iteration_stop, self.num_timesteps + self.log_interval)
            self._condition.notify_all()
            self._condition.wait_for(
                lambda: (
                    self._failure is not None
                    or (self._claimed >= self._target and all(w.parked for w in self._workers))
                )
            )
            failure = self._failure
            losses, self._losses = self._losses, []
        if failure is not None:
            index, timestep, error = failure
            self._stop_workers()
            raise RuntimeError(
                f"A3C worker {index} stopped the run: its environment raised at timestep "
                f"{timestep}: {error}. The other workers were stopped; the last checkpoint is "
                "left as it was."
            ) from error
        return {"loss": float(np.mean(losses))} if losses else {}

    def _stop_workers(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        for worker in self._workers:
            if worker.thread is not None:
                worker.thread.join()

    # ------------------------------------------------------------------ workers

    def _claim_rollout(self, worker: _Worker) -> bool:
        """Waits while the iteration's steps are all claimed; claims `n_steps` more, or
        returns False when the run stops."""
        with self._condition:
            while not self._stopping and self._failure is None and self._claimed >= self._target:
                worker.parked = True
                self._condition.notify_all()
                self._condition.wait()
            worker.parked = False
            if self._stopping or self._failure is not None:
                return False
            self._claimed += self.n_steps
            return True

    def _work(self, worker: _Worker) -> None:
        _THREAD.worker = worker
        try:
            self._observations = self._reset_env(worker.env)
            self._setup_rollouts(worker.env, self.gae_lambda)
            while self._claim_rollout(worker):
                values, version = self._read_shared(worker)
                self._collect_rollout(worker.env)
                batch = next(self.rollout.minibatches(len(self.rollout)))
                loss, gradients = self._gradients(
                    values,
                    batch["observations"],
                    self._targets(batch, self.normalize_advantages),
                )
                with self._shared_lock:
                    if self._stopping:
                        break
                    self._gradients.apply(gradients)
                    self.update_versions.append((worker.index, version, self._version))
                    self._version += 1
                    self.num_updates += 1
                    self._losses.append(loss)
        except Exception as error:
            with self._condition:
                if self._failure is None:
                    self._failure = (worker.index, self.num_timesteps, error)
                self._condition.notify_all()
        finally:
            with self._condition:
                worker.parked = True
                self._condition.notify_all()

    def _read_shared(self, worker: _Worker) -> tuple[list, int]:
        """θ' ← θ, θ'_v ← θ_v: copies the shared parameters into the worker's local networks,
        and returns them (in the order of `trainable_variables`) with their version."""
        with self._shared_lock:
            values, version = self._gradients.snapshot(), self._version
            constants = [
                (local, shared.value) for shared, local in worker.pairs if not shared.trainable
            ]
        position = {id(variable): index for index, variable in enumerate(self._gradients.variables)}
        for shared, local in worker.pairs:
            if id(shared) in position:
                local.assign(values[position[id(shared)]])
        for local, value in constants:
            local.assign(value)
        return values, version

    def _acting_function(self):
        # In a worker, its local copy of actor and critic acts and bootstraps.
        worker = getattr(_THREAD, "worker", None)
        if worker is not None and worker.agent is self:
            return worker.acting
        return super()._acting_function()

    def _record_step(self, env, *step):
        with self._shared_lock:
            return super()._record_step(env, *step)
