"""Training: one loop engine and one checkpoint format, and the loops for images, language models, task
streams and episodes built on them."""
from .checkpoint import (tensor_sha256, atomic_save, settings_diff, load_checkpoint, CheckpointError,
    UnreadableCheckpoint)
from .engine import (StateFormat, Engine)
from .conditional import (task_accuracy, train_multitask, ContinualResult, train_continual)
from .fewshot import (training_labels, episode_loss, train_episodic, evaluate_episodes)
from .image import (History, evaluate, make_optimizer, fit)
from .lm import (CHECKPOINT_FORMAT, LN2, evaluate_bpc, LMHistory, TRAIN_STATE_FORMAT, train_char_lm, generate,
    save_lm, load_lm)

__all__ = ["tensor_sha256", "atomic_save", "settings_diff", "load_checkpoint", "CheckpointError",
           "UnreadableCheckpoint", "StateFormat", "Engine",
           "task_accuracy", "train_multitask", "ContinualResult", "train_continual", "training_labels", "episode_loss", "train_episodic",
           "evaluate_episodes", "History", "evaluate", "make_optimizer", "fit", "CHECKPOINT_FORMAT", "LN2",
           "evaluate_bpc", "LMHistory", "TRAIN_STATE_FORMAT", "train_char_lm", "generate", "save_lm",
           "load_lm"]
