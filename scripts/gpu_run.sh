#!/usr/bin/env bash
# Every GPU figure of the book in one run: `make gpu-run` on a machine with a GPU (issue 15).
#
#   scripts/gpu_run.sh [--device cuda|cuda:N|cpu] [--profile smoke|quick|full] [--out DIR] [--wheels DIR]
#                      [--chapters "01 02 ..."] [--full-chapters "01 03"] [--skip tests,bench,amp,fast-path,book]
#                      [--budget SECONDS] [--python PYTHON]
#
# Steps, each under a time limit (its own cap, and what is left of --budget), each logged; a failed or timed-out
# step is recorded and the run goes on:
#   setup      papermill/jupytext/ipykernel from the wheels in --wheels (scripts/gpu_wheels.sh downloads them)
#              when the python lacks them, and the package from this tree, both into a private folder on
#              PYTHONPATH (nothing is installed into the machine's python)
#   device     device.json: GPU name, driver, memory, torch/CUDA/cuDNN versions, CPU, date, commit
#   tests      pytest -m cuda tests/test_cuda.py (all skipped without a GPU)
#   bench      fastfcn bench: the 16 rows of Table 2 and torchvision's models, 512x512, batch 1, fp32,
#              median of 100 synchronised runs after 10 warm-up, CUDA events, and unsynchronised (--official-fps)
#   amp        the same with bf16 autocast and channels_last (skipped on a CPU that emulates bf16)
#   fast-path  the fast path's variants of EncNet+JPU R50 (compile too with --profile full)
#   book       the chapters through papermill with device=DEVICE in the profile (--chapters: default all of
#              book/_toc.yml, then the front page), then --full-chapters in the full profile
# The smoke profile makes every step small (resnet18 trunks at 64 px): the CPU test runs it.
#
# What comes back (at most 8 files in DIR, as the device tool returns): device.json, bench.json, bench_amp.json,
# bench_fast_path.json, summary.json (each step's status and time, the test counts), book_results.tar.gz (the
# executed chapters' results JSON: gpu/NN_*.json for --profile, full/NN_*.json for --full-chapters),
# book_notebooks.tar.gz (the executed notebooks) and logs.tar.gz. To commit a run:
#   mkdir -p book/results/gpu && cp DIR/device.json DIR/bench*.json DIR/summary.json book/results/gpu/
#   tar -xzf DIR/book_results.tar.gz -C book/results/
# Defaults: --out $OUT if set, else book/results/gpu_run; --budget 450 s with CUDA (the whole run within 8 minutes
# on one H200), none on the CPU. FASTFCN_COMMIT names the tree's commit where the machine has no git checkout.
# Step times on one H200 in the quick profile (2026-12-04, the committed run): setup 7 s, device 8, tests 68,
# bench 77-109, amp 123, fast-path 29, chapter 02 41, chapter 05 24; chapter 07 ran over 90 s before it stopped.
# 450 s therefore leaves room for a few chapters: name them with --chapters.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

DEVICE=cuda
PROFILE=quick
OUT_DIR=${OUT:-book/results/gpu_run}
WHEELS=.gpu-wheels
CHAPTERS=""
FULL_CHAPTERS=""
SKIP=""
BUDGET=""
PYTHON=${PYTHON:-python3}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
value() { [ $# -ge 2 ] || { echo "gpu_run.sh: $1 needs a value (see --help)" >&2; exit 2; }; }

while [ $# -gt 0 ]; do
    case $1 in
        --device) value "$@"; DEVICE=$2; shift 2 ;;
        --profile) value "$@"; PROFILE=$2; shift 2 ;;
        --out) value "$@"; OUT_DIR=$2; shift 2 ;;
        --wheels) value "$@"; WHEELS=$2; shift 2 ;;
        --chapters) value "$@"; CHAPTERS=$2; shift 2 ;;
        --full-chapters) value "$@"; FULL_CHAPTERS=$2; shift 2 ;;
        --skip) value "$@"; SKIP="$SKIP,$2"; shift 2 ;;
        --budget) value "$@"; BUDGET=$2; shift 2 ;;
        --python) value "$@"; PYTHON=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "gpu_run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

case $DEVICE in cuda | cuda:[0-9]* | cpu) ;; *) echo "gpu_run.sh: --device is cuda, cuda:N or cpu, not $DEVICE" >&2; exit 2 ;; esac
case $PROFILE in smoke | quick | full) ;; *) echo "gpu_run.sh: --profile is smoke, quick or full, not $PROFILE" >&2; exit 2 ;; esac
[ -n "$BUDGET" ] || { [ "$DEVICE" = cpu ] && BUDGET=0 || BUDGET=450; }
[[ $BUDGET =~ ^[0-9]+$ ]] || { echo "gpu_run.sh: --budget is a whole number of seconds (0: no limit)" >&2; exit 2; }
case $PYTHON in */*) PYTHON=$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON") ;; esac  # steps run elsewhere too
skipped() { [[ ",$SKIP," == *",$1,"* ]]; }

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fastfcn-gpu-run.XXXXXX")
LOGS=$WORK/logs
mkdir -p "$LOGS" "$WORK/bench" "$WORK/executed"
[ "${KEEP_WORK:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
# the kernels' and IPython's files in the run's folder, not in the machine's home
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg JUPYTER_PLATFORM_DIRS=1 JUPYTER_RUNTIME_DIR=$WORK/jupyter IPYTHONDIR=$WORK/ipython

START=$(date +%s)
RESERVE=20  # seconds kept for packing the results
FAILED=0
# caps per step, in seconds: generous for an H200 in the quick profile; --budget is what binds
declare -A CAP=([setup]=180 [device]=60 [tests]=180 [bench]=200 [amp]=160 [fast-path]=120 [chapter]=300)
[ "$PROFILE" = full ] && CAP+=([bench]=400 [amp]=300 [fast-path]=400 [chapter]=600)

left() {
    if [ "$BUDGET" -eq 0 ]; then echo 100000; else echo $((BUDGET - ($(date +%s) - START) - RESERVE)); fi
}

record() {  # NAME STATUS SECONDS NOTE
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$WORK/steps.tsv"
    echo "   -> $2 ($3 s${4:+, $4})"
}

# run_step NAME CAP CMD...: CMD under min(CAP, what is left), output in logs/NAME.log; never stops the script.
# OK_CODES: the exit codes that count as success (default 0).
run_step() {
    local name=$1 cap=$2
    shift 2
    local limit rc=0 t0 status
    limit=$(left)
    [ "$cap" -lt "$limit" ] && limit=$cap
    echo "== $name: $*"
    if [ "$limit" -lt 10 ]; then
        record "$name" skipped 0 "no time left in the ${BUDGET} s budget"
        return 0
    fi
    t0=$(date +%s)
    timeout -k 10 "$limit" "$@" >"$LOGS/$name.log" 2>&1 || rc=$?
    if [[ " ${OK_CODES:-0} " == *" $rc "* ]]; then
        status=ok
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        status=timeout FAILED=1
    else
        status=failed FAILED=1
    fi
    tail -n 4 "$LOGS/$name.log" | cut -c1-200 | sed 's/^/   | /'
    record "$name" "$status" $(($(date +%s) - t0)) "exit $rc, limit $limit s"
}

has() { "$PYTHON" -c "import $1" >/dev/null 2>&1; }

# ---- setup: the notebook stack and the package, into private folders on PYTHONPATH
echo "gpu_run.sh: device $DEVICE, profile $PROFILE, budget ${BUDGET} s, output $OUT_DIR"
# otter and jupyterquiz: chapters 1, 2, 3 and 5 check their exercises and show a quiz
if ! has "papermill, jupytext, ipykernel, nbclient, otter, jupyterquiz"; then
    if compgen -G "$WHEELS/*.whl" >/dev/null; then
        # --no-deps: the folder leaves out what the machine's python already has (scripts/gpu_wheels.sh)
        run_step setup-wheels "${CAP[setup]}" "$PYTHON" -m pip install --isolated --no-index --no-deps \
            --no-compile --disable-pip-version-check --target "$WORK/site" "$WHEELS"/*.whl
        export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
    else
        echo "== setup-wheels"
        record setup-wheels failed 0 "papermill or otter is missing and $WHEELS holds no wheels (scripts/gpu_wheels.sh)"
        FAILED=1
    fi
fi
if (cd / && has fastfcn); then
    echo "== setup-package: fastfcn is installed in $PYTHON's environment"
else
    run_step setup-package "${CAP[setup]}" "$PYTHON" -m pip install --isolated --no-deps --no-build-isolation \
        --no-compile --disable-pip-version-check --target "$WORK/package" .
    if [ -d "$WORK/package/fastfcn" ]; then
        export PYTHONPATH="$WORK/package${PYTHONPATH:+:$PYTHONPATH}"
    else  # the tree itself is importable: the package is pure Python
        export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
    fi
fi

# ---- device.json
command -v nvidia-smi >/dev/null && nvidia-smi >"$LOGS/nvidia-smi.log" 2>&1 || true
run_step device "${CAP[device]}" "$PYTHON" -m fastfcn.benchmark.gpu_report device "$OUT_DIR/device.json" \
    --device "$DEVICE" --commit "${FASTFCN_COMMIT:-}"

# ---- pytest -m cuda (exit 5: nothing collected, e.g. every test deselected, is not a failure)
if skipped tests; then echo "== tests"; record tests skipped 0 "--skip"; else
    OK_CODES="0 5" run_step tests "${CAP[tests]}" "$PYTHON" -m pytest -m cuda tests/test_cuda.py -q -rA -p no:cacheprovider \
        --junitxml "$LOGS/pytest_cuda.xml"
fi

# ---- fastfcn bench
case $PROFILE in
    smoke) BENCH=(--rows encnet/resnet50/none encnet/resnet50/jpu --substitute-backbone resnet18 --size 64 --runs 2
                  --warmup 1 --no-torchvision)
           FAST=(--fast-path fp32 channels_last --fast-path-images 1) ;;
    quick) BENCH=(--runs 100 --warmup 10)
           FAST=(--fast-path --fast-path-no-compile --fast-path-images 8) ;;
    full)  BENCH=(--runs 100 --warmup 10 --modes inference train --dilated-jpu)
           FAST=(--fast-path --fast-path-images 16) ;;
esac
BENCH+=(--device "$DEVICE" --in-process --official-fps --out-dir "$WORK/bench")
[ "$DEVICE" = cpu ] || BENCH+=(--cudnn-benchmark)

bench_step() {  # NAME FILE ARGS...: one fastfcn bench, its JSON copied to the output as soon as it is written
    local name=$1 file=$2
    shift 2
    if skipped "$name"; then echo "== $name"; record "$name" skipped 0 "--skip"; return 0; fi
    run_step "$name" "${CAP[$name]}" "$PYTHON" -m fastfcn bench "${BENCH[@]}" --name "${file%.json}" "$@"
    [ -f "$WORK/bench/$file" ] && cp "$WORK/bench/$file" "$OUT_DIR/$file"
    return 0
}
bench_step bench bench.json
if "$PYTHON" -c "import sys; from fastfcn.utils.device import bf16_supported; sys.exit(not bf16_supported('$DEVICE'))"; then
    bench_step amp bench_amp.json --dtype bf16 --channels-last
else
    echo "== amp"
    record amp skipped 0 "this $DEVICE has no native bf16 (emulated, far slower than fp32)"
fi
bench_step fast-path bench_fast_path.json --no-table "${FAST[@]}"

# ---- the book through papermill
if skipped book; then echo "== book"; record book skipped 0 "--skip"
elif ! has "papermill, jupytext, ipykernel"; then
    echo "== book"
    record book failed 0 "papermill, jupytext or ipykernel cannot be imported (see setup-wheels)"
    FAILED=1
else
    if [ -z "$CHAPTERS" ]; then  # every chapter of the table of contents, then the front page (it reads them)
        CHAPTERS=$("$PYTHON" -c "from fastfcn.book.chapters import front_page, list_chapters
f = front_page('book'); print(' '.join([c.stem for c in list_chapters('book')] + ([f.stem] if f else [])))")
    fi
    book_run() {  # PROFILE OUTDIR CHAPTER
        run_step "book-$1-$3" "${CAP[chapter]}" "$PYTHON" -m fastfcn book run --profile "$1" --device "$DEVICE" \
            --only "$3" --out "$2"
    }
    for ch in $CHAPTERS; do book_run "$PROFILE" "$WORK/executed/gpu" "$ch"; done
    for ch in $FULL_CHAPTERS; do book_run full "$WORK/executed/full" "$ch"; done
fi

# ---- pack: at most 8 files in the output folder
echo "== pack"
"$PYTHON" - "$WORK" "$OUT_DIR" "$DEVICE" "$PROFILE" "$BUDGET" "$START" "${FASTFCN_COMMIT:-}" <<'EOF'
import json, sys, tarfile, time
import xml.etree.ElementTree as ET
from pathlib import Path

work, out, device, profile, budget, start, commit = sys.argv[1:]
work, out = Path(work), Path(out)
steps = [dict(zip(("name", "status", "seconds", "note"), ln.split("\t")))
         for ln in (work / "steps.tsv").read_text().splitlines() if ln.strip()] if (work / "steps.tsv").exists() else []
for s in steps:
    s["seconds"] = int(s["seconds"])
tests = None
junit = work / "logs" / "pytest_cuda.xml"
if junit.exists():  # the counts of the pytest step
    suites = ET.parse(junit).getroot()
    suites = [suites] if suites.tag == "testsuite" else list(suites)
    tests = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
chapters = {}
executed = sorted(p for p in (work / "executed").glob("*/*.json") if not p.name.startswith("."))
for path in executed:  # a machine without a git checkout: the commit the run was started from
    doc = json.loads(path.read_text())
    env = doc.get("environment") or {}
    if commit and not env.get("git_commit"):
        env["git_commit"] = commit
        path.write_text(json.dumps(doc, indent=1) + "\n")
    chapters[f"{path.parent.name}/{path.stem}"] = {"profile": doc.get("profile"), "seconds": doc.get("total_seconds")}
with tarfile.open(out / "book_results.tar.gz", "w:gz") as tar:
    for path in executed:
        tar.add(path, arcname=f"{path.parent.name}/{path.name}")
notebooks = sorted((work / "executed").glob("*/*.ipynb"))
with tarfile.open(out / "book_notebooks.tar.gz", "w:gz") as tar:
    for path in notebooks:
        tar.add(path, arcname=f"{path.parent.name}/{path.name}")
if (out / "book_notebooks.tar.gz").stat().st_size > 15 * 2**20:  # the device tool returns files of 16 MiB at most
    (out / "book_notebooks.tar.gz").unlink()
    steps.append({"name": "pack", "status": "note", "seconds": 0, "note": "notebooks over 15 MiB: left out"})
summary = {"device": device, "profile": profile, "budget_s": int(budget), "seconds": int(time.time()) - int(start),
           "steps": steps, "tests": tests, "chapters": chapters,
           "ok": all(s["status"] in ("ok", "skipped", "note") for s in steps)}
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
    tar.add(work / "logs", arcname="logs")
    if (work / "steps.tsv").exists():
        tar.add(work / "steps.tsv", arcname="logs/steps.tsv")
print(f"{out}: " + ", ".join(sorted(p.name for p in out.iterdir())))
print(f"tests: {tests}; chapters: {', '.join(chapters) or 'none'}; {summary['seconds']} s; "
      + ("every step ok" if summary["ok"] else "some steps failed: "
         + ", ".join(s["name"] for s in steps if s["status"] in ("failed", "timeout"))))
EOF
exit "$FAILED"
