"""``fastfcn bench``: Table 2 (and torchvision's dilated models) timed on this machine; see fastfcn.benchmark."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_subcommands"]


def _cmd_table1_steps(args: argparse.Namespace) -> int:
    import json

    from .. import benchmark as bench
    from ..benchmark.table1_steps import format_table1_steps, table1_steps
    from ..utils.io import atomic_write_text

    result = table1_steps(args.table1_steps, runs=args.runs, warmup=args.warmup)
    print(format_table1_steps(result))
    if not args.no_save:
        out_dir = args.out_dir or bench.DEFAULT_RESULTS_DIR
        path = atomic_write_text(out_dir / f"{args.name or 'table1_steps_cpu'}.json", json.dumps(result, indent=1) + "\n")
        print(f"wrote {path}")
    return 0


def _fast_path_and_inference_costs(args: argparse.Namespace, opts: Any) -> dict[str, Any]:
    """The fast-path variants and runtimes, and what ``fastfcn predict`` and ``fastfcn eval`` cost per image,
    each measured in one run (rounds over every configuration) and printed as ratios."""
    from .. import benchmark as bench
    from ..inference.fast_path import compilable_variants, default_variants

    extra: dict[str, Any] = {"fast_path": None}
    if args.fast_path is None and args.predict_cost is None and args.eval_cost is None:
        return extra
    fp_spec = bench.parse_rows(["encnet/resnet50/jpu"], stem=args.stem, substitute=args.substitute_backbone)[0]
    if args.fast_path is not None:
        variants = args.fast_path or default_variants(opts.device, with_compile=not args.fast_path_no_compile)
        variants, uncompilable = compilable_variants(variants, opts.device)
        if uncompilable:
            print(f"not timed (torch.compile needs a C++ compiler and none was found): {', '.join(uncompilable)}")
        extra["fast_path"] = bench.fast_path(fp_spec, opts, variants, weights=args.fast_path_weights,
                                             images=args.fast_path_images)
        print()
        print(bench.format_fast_path(extra["fast_path"]))
    if args.predict_cost is not None:
        extra["predict_cost"] = bench.predict_cost(fp_spec, opts, images=args.predict_cost, rounds=opts.runs)
        print()
        print(bench.format_predict_cost(extra["predict_cost"]))
    if args.eval_cost is not None:
        extra["eval_cost"] = bench.eval_cost(fp_spec, opts, images=args.eval_cost, rounds=opts.runs)
        print()
        print(bench.format_eval_cost(extra["eval_cost"]))
    return extra


def _cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from .. import benchmark as bench

    if args.table1_steps:
        return _cmd_table1_steps(args)
    opts = bench.BenchOptions(
        device=args.device, dtype=args.dtype, channels_last=args.channels_last, compile=args.compile,
        batch=args.batch, train_batch=args.train_batch, size=args.size, runs=args.runs, warmup=args.warmup,
        aux=not args.no_aux, num_classes=args.num_classes, jpu_width=args.jpu_width, official_fps=args.official_fps,
        threads=args.threads, isolate=not args.in_process, cudnn_benchmark=args.cudnn_benchmark, seed=args.seed,
    ).validated()
    results = []
    if not args.no_table:
        if args.rows:
            specs = bench.parse_rows(args.rows, stem=args.stem, substitute=args.substitute_backbone)
        else:
            specs = bench.table2_specs(args.backbones, args.heads, args.upsamplings, stem=args.stem,
                                       substitute=args.substitute_backbone)
        if args.dilated_jpu:
            specs += [bench.dilated_jpu_spec(s.head, s.paper_backbone, "jpu", stem=args.stem,
                                             substitute=args.substitute_backbone)
                      for s in specs if s.upsampling == "jpu"]
        if not args.no_torchvision:
            specs += bench.torchvision_specs(args.torchvision)
        results = bench.run_benchmark(specs, opts, modes=args.modes, progress=not args.quiet)
    elif args.fast_path is None and args.predict_cost is None and args.eval_cost is None:
        raise ValueError("--no-table leaves nothing to measure: add --fast-path, --predict-cost or --eval-cost")
    print(f"{bench.environment(opts.device)['device_name']}, torch {torch.__version__}, "
          f"{opts.threads or torch.get_num_threads()} threads, {opts.dtype}, {opts.size}x{opts.size}, "
          f"{bench.timing_words(opts, len(results))}")
    if results:
        print(bench.format_table(results))
    extra = _fast_path_and_inference_costs(args, opts)
    if not args.no_save:
        stem = args.name or bench.default_output_name(opts.device)
        out_dir = args.out_dir or bench.DEFAULT_RESULTS_DIR
        json_path = bench.write_json(out_dir / f"{stem}.json", results, opts, extra)
        if results:
            csv_path = bench.write_csv(results, out_dir / f"{stem}.csv")
            print(f"wrote {json_path} and {csv_path}")
        else:
            print(f"wrote {json_path}")
    return 0


def _add_how_to_measure(g: argparse._ArgumentGroup) -> None:
    from ..benchmark.options import DTYPES

    g.add_argument("--device", default="auto", help="auto (GPU when visible), cpu, cuda or cuda:N")
    g.add_argument("--dtype", choices=DTYPES, default="fp32", help="bf16/fp16: autocast (fp16 on CUDA only)")
    g.add_argument("--channels-last", action="store_true")
    g.add_argument("--compile", action="store_true", help="torch.compile every model (compilation is warm-up)")
    g.add_argument("--batch", type=int, default=1, help="inference batch (default 1)")
    g.add_argument("--train-batch", type=int, default=2, help="training-step batch (>= 2, default 2)")
    g.add_argument("--size", type=int, default=512, help="square input side (default 512)")
    g.add_argument("--runs", type=int, default=5,
                   help="timed runs (median reported); on the CPU several rows are timed in rounds, one call of each "
                        "per round")
    g.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    g.add_argument("--official-fps", action="store_true",
                   help="also time without synchronising the GPU, as the official FPS script does")
    g.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: PyTorch's choice)")
    g.add_argument("--in-process", action="store_true",
                   help="measure in this process (faster; CPU peak memory then less reliable)")
    g.add_argument("--cudnn-benchmark", action="store_true")
    g.add_argument("--seed", type=int, default=0)


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    from ..benchmark.options import MODES
    from ..benchmark.specs import STEMS, TORCHVISION_MODELS

    p = sub.add_parser("bench", help="latency, FPS and peak memory of the Table 2 models (and torchvision's)",
                       description="Time the rows of the paper's Table 2 and torchvision's dilated segmentation "
                                   "models; print a table beside the paper's FPS, write JSON and CSV.")
    g = p.add_argument_group("what to measure")
    g.add_argument("--backbones", nargs="+", choices=["resnet50", "resnet101"], help="Table 2 backbones (default both)")
    g.add_argument("--heads", nargs="+", choices=["encnet", "aspp", "psp"], help="default: all")
    g.add_argument("--upsamplings", nargs="+", choices=["none", "bilinear", "fpn", "jpu"], help="default: all")
    g.add_argument("--rows", nargs="+", metavar="HEAD/BACKBONE/UPS",
                   help="explicit Table 2 rows, e.g. encnet/resnet50/jpu (overrides the three filters)")
    g.add_argument("--stem", choices=STEMS, default="deep",
                   help="deep: resnet50s/resnet101s as the official models (default); torchvision: 7x7 stem")
    g.add_argument("--substitute-backbone", metavar="NAME", help="build every row on this backbone (e.g. resnet18)")
    g.add_argument("--dilated-jpu", action="store_true", help="also time JPU on a dilated (OS8) backbone")
    g.add_argument("--torchvision", nargs="+", choices=TORCHVISION_MODELS, default=list(TORCHVISION_MODELS),
                   metavar="MODEL", help=f"torchvision models to add (default: {' '.join(TORCHVISION_MODELS)})")
    g.add_argument("--no-torchvision", action="store_true")
    g.add_argument("--no-table", action="store_true", help="skip the Table 2 rows (with --fast-path: only the fast path)")
    g.add_argument("--modes", nargs="+", choices=MODES, default=["inference"],
                   help="inference and/or train (one forward+backward+SGD step)")
    g.add_argument("--no-aux", action="store_true", help="without the auxiliary FCN head")
    g.add_argument("--num-classes", type=int, default=59)
    g.add_argument("--jpu-width", type=int, default=512)
    g.add_argument("--fast-path", nargs="*", metavar="VARIANT",
                   help="also time EncNet+JPU R50 variants (e.g. fp32 channels_last bf16 channels_last+bf16 "
                        "compile); no VARIANT: every combination for the device")
    g.add_argument("--fast-path-no-compile", action="store_true", help="leave torch.compile out of the default variants")
    g.add_argument("--fast-path-weights", type=Path, metavar="CKPT",
                   help="a trained fastfcn checkpoint for the fast path's label comparison (default: random weights)")
    g.add_argument("--fast-path-images", type=int, default=16, metavar="N",
                   help="procedural validation scenes on which the fast path's labels are compared (16)")
    g.add_argument("--predict-cost", type=int, metavar="N",
                   help="also time `fastfcn predict` on N procedural scenes (EncNet+JPU R50) in each mode and "
                        "runtime, per image against one fp32 eager forward and against the runtime's own forward; "
                        "--runs rounds")
    g.add_argument("--eval-cost", type=int, metavar="N",
                   help="also time `fastfcn eval` on N procedural scenes (EncNet+JPU R50, its default runtime) in whole "
                        "and slide mode, per image against the forwards each mode runs; --runs rounds")
    g.add_argument("--table1-steps", metavar="PROFILE", choices=["smoke", "quick"],
                   help="instead: the training step of every row of the book's Table 1 miniature (and of its "
                        "pretraining) in fp32, channels_last and, where native, bf16, as ratios measured in one run")
    _add_how_to_measure(p.add_argument_group("how to measure"))
    g = p.add_argument_group("output")
    g.add_argument("--out-dir", type=Path, default=None, help="default book/results under the current folder")
    g.add_argument("--name", default=None, help="file stem (default bench_<cpu|gpu>_<device name>)")
    g.add_argument("--no-save", action="store_true", help="print only")
    g.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_bench)

