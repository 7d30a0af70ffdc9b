"""Looking at models: closed-form counts, published nets, memory, timing, trajectories and diagnostics."""
from .counting import (conv2d_params, linear_params, batchnorm_params, layernorm_params, linear_head_params,
    ha_generator_params, num_tiles, tiled_params, lstm_params, hyperlstm_params, char_lm_params,
    mnist_hyper_params, CIFAR100_CONVS, CIFAR100_FCS, CIFAR100_VARIANTS, cifar100_net_params,
    wrn_kernel_shapes, wrn_params, linear_head_rows)
from .diagnostics import (generated_weight_variance, weight_spread, output_spread, z_sensitivity,
    dead_fraction, diagnose, mean_ci)
from .memory import (count_params, checkpoint_bytes, checkpoint_mb, checkpoint_mib, format_bytes,
    generation_memory, memory_disk_table)
from .published import (Published, WRN40_1_PUBLISHED_M, PUBLISHED, build_published, count_published,
    published_table)
from .schemes import (SCHEMES, SCHEME_LABELS, SCHEME_COLORS, scheme_params, compression_ratio,
    break_even_width, ha_break_even_width_closed_form, break_even_nz, sweep, calculator_rows, SchemeStack,
    build_scheme, solve_nz)
from .timing import (time_interleaved, speed_rows, time_fwd_bwd, time_per_sample_impls)
from .trajectories import (accuracy_along, TrainingTracker, path_length_share, pca_trajectory,
    scaling_vectors)

__all__ = ["conv2d_params", "linear_params", "batchnorm_params", "layernorm_params", "linear_head_params",
           "ha_generator_params", "num_tiles", "tiled_params", "lstm_params", "hyperlstm_params",
           "char_lm_params", "mnist_hyper_params", "CIFAR100_CONVS", "CIFAR100_FCS", "CIFAR100_VARIANTS",
           "cifar100_net_params", "wrn_kernel_shapes", "wrn_params", "linear_head_rows",
           "generated_weight_variance", "weight_spread", "output_spread", "z_sensitivity", "dead_fraction",
           "diagnose", "mean_ci", "count_params", "checkpoint_bytes", "checkpoint_mb", "checkpoint_mib",
           "format_bytes", "generation_memory", "memory_disk_table", "Published", "WRN40_1_PUBLISHED_M",
           "PUBLISHED", "build_published", "count_published", "published_table", "SCHEMES", "SCHEME_LABELS",
           "SCHEME_COLORS", "scheme_params", "compression_ratio", "break_even_width",
           "ha_break_even_width_closed_form", "break_even_nz", "sweep", "calculator_rows", "SchemeStack",
           "build_scheme", "solve_nz", "time_interleaved", "speed_rows", "time_fwd_bwd",
           "time_per_sample_impls", "accuracy_along", "TrainingTracker", "path_length_share",
           "pca_trajectory", "scaling_vectors"]
