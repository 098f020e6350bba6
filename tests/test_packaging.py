"""The package metadata, the public API and the installed layout."""

import importlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent

PUBLIC_API = {
    "dlkit": ["__version__"],
    "dlkit.callbacks": ["LatentScatter", "LossCurves", "SampleGrid"],
    "dlkit.cli": ["DEMO_STAGES", "export_model", "main", "recipe_entry_point"],
    "dlkit.distribute": ["SUPPORTED", "local_share", "scope"],
    "dlkit.config": ["ConfigError", "FieldInfo", "config_fields", "format_help", "parse_overrides"],
    "dlkit.data": [
        "DATASETS",
        "DIGITS_SHAPE",
        "DatasetUnavailableError",
        "END_ID",
        "MNIST_SHAPE",
        "NUM_DIGIT_CLASSES",
        "PAD_ID",
        "SHAPE_CLASSES",
        "START_ID",
        "TEXT_DATASETS",
        "VOCABULARY",
        "VOCABULARY_SIZE",
        "digit_classification",
        "digit_sequences",
        "digits",
        "karate_club",
        "load",
        "load_text",
        "mnist_sample",
        "noisy_sine_windows",
        "shapes",
        "split_nodes",
        "stochastic_block_model",
        "text_to_tokens",
        "tokens_to_text",
    ],
    "dlkit.export": ["FORMATS", "ExportError", "export", "export_tf_agents_policy", "verify"],
    "dlkit.layers": [
        "LSTM",
        "AdditiveScore",
        "CategoricalQHead",
        "ChebConv",
        "DilatedConv2D",
        "DuelingHead",
        "FeaturePyramid",
        "FiLM",
        "GaussianSampling",
        "GraphConv",
        "LSTMCell",
        "LabelChannels",
        "MinibatchStdDev",
        "MultiHeadAttention",
        "NoisyDense",
        "SinusoidalPositionalEncoding",
        "TokenAndPositionEmbedding",
        "TransformerDecoder",
        "TransformerEncoder",
        "TransposedConv2D",
        "attention",
        "check_token_ids",
        "conv_as_matrix",
        "conv_output_size",
        "masked_softmax",
        "normalize_adjacency",
        "receptive_field",
        "scaled_dot_product_scores",
    ],
    "dlkit.losses": [
        "cycle_consistency_loss",
        "discriminator_loss",
        "generator_loss",
        "kl_divergence_to_standard_normal",
        "sequence_cross_entropy",
    ],
    "dlkit.models": [
        "ACGAN",
        "ADVERSARIAL_LOSSES",
        "CONDITIONING_MODES",
        "GAN",
        "GCN_CONV_TYPES",
        "PRIORS",
        "VAE",
        "VAEGAN",
        "AdversarialAutoencoder",
        "Autoencoder",
        "ConditionalGAN",
        "ConditionalVAE",
        "CycleGAN",
        "SequenceGenerator",
        "Transformer",
        "build_acgan_digits_discriminator",
        "build_conditional_digits_discriminator",
        "build_conditional_digits_generator",
        "build_conv_autoencoder",
        "build_digits_aae_networks",
        "build_dense_autoencoder",
        "build_digits_cvae_decoder",
        "build_digits_cvae_encoder",
        "build_digits_cyclegan_networks",
        "build_digits_discriminator",
        "build_digits_generator",
        "build_digits_vae_decoder",
        "build_digits_vae_encoder",
        "build_digits_vaegan_networks",
        "build_gcn",
        "build_lstm_classifier",
        "build_lstm_forecaster",
        "build_transformer_classifier",
        "sample_prior",
    ],
    "dlkit.plotting": [
        "confusion_matrix",
        "plot_attention",
        "plot_confusion_matrix",
        "plot_episode_returns",
        "plot_history",
        "plot_image_grid",
        "plot_latent_scatter",
        "plot_manifold",
    ],
    "dlkit.rl": [
        "A2C",
        "A3C",
        "DQN",
        "PPO",
        "REINFORCE",
        "SARSA",
        "TRPO",
        "A2CConfig",
        "ActorCriticConfig",
        "A3CConfig",
        "Agent",
        "AgentConfig",
        "DQNConfig",
        "EpisodicLife",
        "FireOnReset",
        "FrameReplayBuffer",
        "GreedyAction",
        "ObservationNormalization",
        "PPOConfig",
        "PolicyGradientConfig",
        "PrioritizedFrameReplayBuffer",
        "PrioritizedReplayBuffer",
        "QLearning",
        "REINFORCEConfig",
        "ReplayBuffer",
        "RewardScaler",
        "RolloutBuffer",
        "RunningMeanStd",
        "SumTree",
        "TRPOConfig",
        "as_vector_env",
        "build_actor_critic",
        "build_q_network",
        "categorical_projection",
        "evaluate",
        "huber_loss",
        "make_atari_env",
        "make_vector_env",
        "nature_cnn",
        "q_learning_targets",
    ],
    "dlkit.testing": ["run_layer_test"],
    "dlkit.vision": [
        "YoloHead",
        "YoloLoss",
        "activation_maximization",
        "activation_norm",
        "alpha_norm",
        "attack_report",
        "average_precisions",
        "build_cnn_classifier",
        "build_dense_classifier",
        "build_fcn",
        "build_yolo",
        "class_iou",
        "class_shares",
        "content_loss",
        "convolutionalize",
        "decode_predictions",
        "deep_dream",
        "digit_judge",
        "encode_yolo_targets",
        "evolutionary_attack",
        "feature_distance",
        "feature_inversion",
        "fgsm",
        "freeze_up_to",
        "gram_matrix",
        "guided_backpropagation",
        "iou",
        "iterative_attack",
        "judge_classes",
        "mean_average_precision",
        "mean_iou",
        "non_max_suppression",
        "octave_shapes",
        "pairwise_iou",
        "predict_masks",
        "requested_class_accuracy",
        "saliency_map",
        "sample_per_class",
        "style_feature_model",
        "style_loss",
        "style_transfer",
        "total_variation",
        "train_digits_classifier",
        "train_fcn",
        "transfer_model",
        "unfreeze_from",
        "unit_activation",
        "yolo_loss",
    ],
    "dlkit.training": [
        "AlternatingModel",
        "CompiledFunction",
        "CompiledGradients",
        "CompiledInference",
        "CompiledTrainSteps",
        "FusedFit",
        "OptimizerGroup",
        "Update",
        "compile_function",
        "compile_gradients",
        "compile_inference",
        "compile_train_steps",
        "enable_compilation_cache",
        "fused_fit",
        "hessian_vector_product",
        "list_devices",
        "value_and_grad",
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC_API))
def test_public_api_is_pinned(module_name):
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC_API[module_name])
    for name in module.__all__:
        assert hasattr(module, name), name


def test_every_subpackage_is_listed_for_installation():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "dlkit").rglob("__init__.py")
    }
    assert on_disk | {"dlkit.recipes"} == listed
    assert pyproject["tool"]["setuptools"]["package-dir"] == {"dlkit.recipes": "recipes"}


@pytest.mark.slow
def test_wheel_installs_recipes_as_dlkit_recipes(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("dlkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dlkit/recipes/classifier_digits.py" in names
    assert "dlkit/recipes/__init__.py" in names
    assert any(name.endswith("entry_points.txt") for name in names)
