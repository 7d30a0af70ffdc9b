"""Models, in pure torch: the generator (Eq. 2-3), tiling, hyperfan init, the main nets, HyperLSTM cells,
    conditional nets.  The main nets take generated weights; nothing here reads data or trains."""
from .charlm import (CharLM, upgrade_config, detach_state, lstm_hidden_for_params, paper_ptb_config)
from .cifar import (VARIANTS, PARTIAL_LAYERS, LayerSpec, cifar_layer_specs, WeightSource, OrdinaryWeights,
    NaiveHeads, ChunkedHyperWeights, assemble_chunks_slow, CompositeWeights, CifarNet, build_cifar_net)
from .conditional import (IMPLS, apply_loop, apply_bmm, apply_einsum, PerSampleLinear, MainMLP, SharedNet,
    SeparateNets, TaskHyperNet, output_regularizer)
from .fewshot import (METHODS, ConvEncoder, prototypes, ProtoNet, HyperFewShot, FineTune)
from .generator import (HyperConvGenerator, direct_eq2)
from .hyperlstm import (CELLS, GATES, SOURCES, FORGET_BIAS, HyperLSTMLayer, LayerNormLSTMLayer, TorchLSTMLayer)
from .hyperlstm_buffers import (LN_EPS, Params, release_workspace)
from .hyperlstm_fast import (hyperlstm_sequence,)
from .hyperlstm_native import (kernel_status,)
from .hyperlstm_readable import (layer_norm, ReadableHyperLSTMCell)
from .init import (INIT_NAMES, INITS, GENERATOR_INITS, check_init, hyperfan_variance)
from .mnist import (StaticHyperConv2d, MNISTConvNet, MNISTHyperNet, mnist_net, interpolate_z)
from .tiling import (tile_grid, layer_grid, tiles_by_layer, kernel_from_tiles, TiledConvEmbeddings)
from .weights import (num_params, unflatten, check_weights)
from .wrn import (wrn_blocks_per_group, wrn_widths, wrn_blocks, wrn_kernel_shapes, WideResNet, build_wrn)

__all__ = ["CharLM", "upgrade_config", "detach_state", "lstm_hidden_for_params", "paper_ptb_config",
           "VARIANTS", "PARTIAL_LAYERS", "LayerSpec",
           "cifar_layer_specs", "WeightSource", "OrdinaryWeights", "NaiveHeads", "ChunkedHyperWeights",
           "assemble_chunks_slow", "CompositeWeights", "CifarNet", "build_cifar_net", "IMPLS", "apply_loop",
           "apply_bmm", "apply_einsum", "PerSampleLinear", "MainMLP", "SharedNet", "SeparateNets",
           "TaskHyperNet", "output_regularizer", "METHODS", "ConvEncoder", "prototypes", "ProtoNet",
           "HyperFewShot", "FineTune", "HyperConvGenerator", "direct_eq2", "CELLS", "GATES", "SOURCES", "FORGET_BIAS",
           "HyperLSTMLayer", "LayerNormLSTMLayer", "TorchLSTMLayer", "LN_EPS", "Params", "release_workspace",
           "hyperlstm_sequence", "kernel_status", "layer_norm", "ReadableHyperLSTMCell", "INIT_NAMES", "INITS",
           "GENERATOR_INITS", "check_init", "hyperfan_variance", "StaticHyperConv2d", "MNISTConvNet",
           "MNISTHyperNet", "mnist_net", "interpolate_z", "tile_grid", "layer_grid", "tiles_by_layer",
           "kernel_from_tiles", "TiledConvEmbeddings", "num_params", "unflatten", "check_weights",
           "wrn_blocks_per_group", "wrn_widths", "wrn_blocks", "wrn_kernel_shapes", "WideResNet", "build_wrn"]
