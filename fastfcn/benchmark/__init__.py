"""The speed and memory benchmark of the paper's Table 2, and of the fast inference path.

* :mod:`~fastfcn.benchmark.specs` -- what is measured (Table 2 rows, torchvision's dilated models)
* :mod:`~fastfcn.benchmark.options` -- how (device, precision, layout, sizes, repetitions)
* :mod:`~fastfcn.benchmark.models` -- the networks with seeded weights, calibrated BatchNorm, complexity
* :mod:`~fastfcn.benchmark.measure` -- latency, FPS and peak memory of inference and a training step
* :mod:`~fastfcn.benchmark.memory` -- the peak-memory probe and the training-memory fit
* :mod:`~fastfcn.benchmark.worker` -- one measurement in a fresh process
* :mod:`~fastfcn.benchmark.rounds` -- several models' latencies timed in rounds (one call of each per round)
* :mod:`~fastfcn.benchmark.variants` -- the fast path's variants and other runtimes: speed-up and labels changed
* :mod:`~fastfcn.benchmark.compile_cost` -- when torch.compile's one-time cost pays off against the other paths
* :mod:`~fastfcn.benchmark.predict_cost` -- what ``fastfcn predict`` costs per image, in each mode and variant
* :mod:`~fastfcn.benchmark.predict_parts` -- its parts one after another: where the time beyond the network goes
* :mod:`~fastfcn.benchmark.eval_cost` -- what ``fastfcn eval`` costs per image, in each mode, over its forwards
* :mod:`~fastfcn.benchmark.int8` -- int8 graphs (ONNX Runtime, OpenVINO) against fp32 on a trained checkpoint
* :mod:`~fastfcn.benchmark.report` -- CSV/JSON with the environment stamp, terminal tables
* :mod:`~fastfcn.benchmark.cost_model` -- a roofline cost model: per-layer FLOPs and bytes, predicted GPU time
* :mod:`~fastfcn.benchmark.cost_check` -- the cost model checked against this machine's Table 2, and its GPU FPS
"""

from ..utils.environment import environment
from .compile_cost import compile_payoff, compile_payoff_words, format_compile_payoff
from .eval_cost import eval_cost, format_eval_cost
from .measure import annotate, measure, run_benchmark
from .memory import TITAN_XP_BYTES, training_memory_fit
from .models import build_spec_model, calibrate_bn, flops_by_part, model_complexity, synthetic_images
from .options import DTYPES, MODES, BenchOptions
from .predict_cost import format_predict_cost, predict_cost
from .predict_parts import format_predict_parts, predict_parts
from .report import (
    CSV_FIELDS,
    DEFAULT_RESULTS_DIR,
    default_output_name,
    fmt,
    format_table,
    gpu_result_files,
    load_json,
    write_csv,
    write_json,
)
from .rounds import timed_in_rounds, timing_words
from .specs import (
    STEMS,
    TORCHVISION_MODELS,
    ModelSpec,
    dilated_jpu_spec,
    parse_rows,
    spec_fields,
    table2_specs,
    torchvision_specs,
)
from .variants import (
    AGREEMENT_THRESHOLD,
    comparison_images,
    describe_measurement,
    fast_path,
    format_fast_path,
    result_files,
)

__all__ = ["AGREEMENT_THRESHOLD", "CSV_FIELDS", "DEFAULT_RESULTS_DIR", "DTYPES", "MODES", "STEMS", "TITAN_XP_BYTES",
           "TORCHVISION_MODELS", "BenchOptions", "ModelSpec", "annotate", "build_spec_model", "calibrate_bn",
           "comparison_images", "compile_payoff", "compile_payoff_words", "format_compile_payoff", "default_output_name",
           "describe_measurement", "dilated_jpu_spec", "environment", "fast_path", "flops_by_part", "fmt",
           "eval_cost", "format_eval_cost", "format_fast_path", "format_predict_cost", "format_predict_parts",
           "format_table", "gpu_result_files", "load_json", "measure", "model_complexity", "parse_rows", "predict_cost",
           "predict_parts", "result_files", "run_benchmark", "spec_fields",
           "timed_in_rounds", "timing_words", "synthetic_images", "table2_specs", "torchvision_specs",
           "training_memory_fit", "write_csv", "write_json"]
