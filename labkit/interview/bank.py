r"""Interview prep: gather every notebook's interview questions and key terms in one place.

The questions and the glossary are read from the notebooks themselves (their "## Interview
corner" and "## Key terms" sections), so this page never drifts from the course. The ten
classic questions name the notebook that demonstrates each answer and a phrase that must be
found there (tests check it).

Key-term tables come in two forms, both read by ``glossary``:

    | English | 中文 | meaning |              (the older form: simplified Chinese only)
    | English | 简体 | 繁體 | meaning |        (simplified and traditional Chinese)

Cells are split on unescaped pipes only: ``$\mathrm{KL}(P\|Q)$`` stays one cell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from labkit.core.paths import NOTEBOOKS, notebook_paths

QUESTION = re.compile(
    r"\*\*(Q\d+\.\s*.+?)\*\*\s*<details>\s*<summary>.*?</summary>(.*?)</details>", re.S
)


@dataclass(frozen=True)
class Question:
    notebook: str
    question: str
    answer: str


@dataclass(frozen=True)
class Classic:
    question: str
    answer: str
    notebook: str  # stem of the notebook that demonstrates it
    evidence: str  # text that must appear in that notebook


CLASSICS = [
    Classic(
        "Why does fp16 training need loss scaling, and why does bf16 usually not?",
        "fp16 has 5 exponent bits: gradients below ~6e-8 flush to zero and the loss signal is lost. "
        "Scaling the loss by S (dynamic: grow after N clean steps, halve and skip the step on inf/nan) "
        "shifts gradients into range; they are unscaled before the optimizer step. bf16 keeps fp32's "
        "8 exponent bits, so it has the same range and needs no scaling, at the cost of precision.",
        "01_mixed_precision",
        "DynamicLossScaler",
    ),
    Classic(
        "Is gradient accumulation exactly equivalent to training with a k-times larger batch?",
        "For the gradient, yes, if each micro-batch loss is divided by k (equal micro-batch sizes, mean "
        "reduction). Not for BatchNorm (statistics per micro-batch), and the optimizer sees one step per "
        "k micro-batches, so the learning rate and schedule must count optimizer steps.",
        "02_gradient_accumulation",
        "allclose",
    ),
    Classic(
        "What does the temperature do in knowledge distillation, and why multiply the soft loss by T²?",
        "Dividing logits by T > 1 softens the teacher's distribution and exposes 'dark knowledge' "
        "(how similar wrong classes are). The soft-loss gradient scales like 1/T², so multiplying by T² "
        "keeps its weight comparable to the hard-label loss when T changes.",
        "03_knowledge_distillation",
        "distillation_loss",
    ),
    Classic(
        "Why does 80 % unstructured sparsity not make my model faster on a CPU?",
        "Dense kernels multiply the zeros anyway; a mask only changes values, not the work. Speed needs "
        "structure the kernel can skip: removed channels (smaller dense layers), 2:4 semi-structured "
        "sparsity on GPUs with sparse tensor cores, or very high sparsity with sparse kernels.",
        "04_pruning",
        "prune_channels",
    ),
    Classic(
        "Symmetric or asymmetric, per-tensor or per-channel quantisation: which when?",
        "r = S(q − Z). Symmetric (Z = 0) suits zero-centred weights and makes integer matmuls cheaper; "
        "asymmetric uses the full range for one-sided activations such as ReLU outputs. Per-channel "
        "scales handle channels with very different ranges (conv/linear weights) at little cost.",
        "05_quantization_math",
        "compute_qparams",
    ),
    Classic(
        "PTQ or QAT: when do you need quantisation-aware training?",
        "Post-training quantisation with good calibration is usually enough at 8 bits. At 4 bits or "
        "below, or for sensitive layers, QAT fine-tunes with fake-quant in the forward pass and a "
        "straight-through estimator in the backward pass so the weights adapt to the rounding.",
        "06_ptq_and_qat",
        "QAT",
    ),
    Classic(
        "How does FlashAttention save memory, and why is it faster when it does the same FLOPs?",
        "It never materialises the N×N score matrix: it streams K/V blocks through on-chip SRAM and "
        "keeps a running max and sum (online softmax) to rescale the output. Memory drops from O(N²) to "
        "O(N), and HBM traffic drops, which is what limits attention on GPUs.",
        "08_flash_attention",
        "tiled_attention",
    ),
    Classic(
        "What does TensorRT (or ONNX Runtime) do that PyTorch eager does not?",
        "It compiles the whole graph ahead of time: fuses layers, picks the fastest kernel per shape "
        "(auto-tuning), plans memory, and runs FP16/INT8 with calibration. Eager mode runs op by op "
        "from Python. The price: static shapes or optimisation profiles, and a build step.",
        "09_onnx_and_tensorrt",
        "onnxruntime",
    ),
    Classic(
        "Why does a KV cache speed up generation, and what does it cost?",
        "Without it each new token recomputes keys and values of the whole prefix (O(n²) work for n "
        "tokens); with it each step computes only the new token's K/V and attends to the cache. It "
        "costs memory: layers × 2 × heads × head_dim × tokens × bytes per sequence.",
        "11_streaming_generation",
        "use_cache",
    ),
    Classic(
        "What do ZeRO stages 1, 2 and 3 shard, and what does it save?",
        "Stage 1 shards optimizer states, stage 2 also gradients, stage 3 also parameters, across N "
        "data-parallel ranks: per-GPU memory goes from (2+2+K)Ψ to 4Ψ + KΨ/N, 2Ψ + (2+K)Ψ/N and "
        "(4+K)Ψ/N bytes for Ψ parameters in mixed precision with Adam (K = 12).",
        "12_distributed_training",
        "ZeRO",
    ),
]


def notebook_text(stem: str, folder: Path = NOTEBOOKS) -> str:
    """All cell sources of notebooks/<stem>.ipynb as one string ('' if it does not exist)."""
    path = folder / f"{stem}.ipynb"
    if not path.exists():
        return ""
    nb = nbformat.read(path, as_version=4)
    return "\n".join(c.source for c in nb.cells)


def _section(markdown: str, heading: str) -> str:
    m = re.search(rf"^##\s+{heading}.*?$(.*?)(?=^##\s|\Z)", markdown, re.M | re.S | re.I)
    return m.group(1) if m else ""


def _markdown(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def course_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The numbered course notebooks, in order (core's one notebook list, numbered ones only)."""
    return [p for p in notebook_paths(folder=folder) if re.match(r"\d\d_", p.name)]


def questions(folder: Path = NOTEBOOKS) -> list[Question]:
    """Every interview question of every course notebook, in course order."""
    found = []
    for path in course_notebooks(folder):
        section = _section(_markdown(path), "Interview corner")
        for q, a in QUESTION.findall(section):
            found.append(Question(path.stem, q.strip(), a.strip()))
    return found


CELL_SPLIT = re.compile(r"(?<!\\)\|")  # a pipe not preceded by a backslash
HEADERS = {"english": "English", "中文": "简体", "简体": "简体", "繁體": "繁體", "繁体": "繁體",
           "meaning": "meaning"}  # fmt: skip


def split_row(row: str) -> list[str]:
    """Cells of one markdown table row, split on unescaped pipes (``\\|`` stays in its cell)."""
    body = row.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [c.strip() for c in CELL_SPLIT.split(body)]


def parse_key_terms(section: str) -> list[dict[str, str]]:
    """Rows of a Key terms table as {"English", "简体", "繁體", "meaning"} (繁體 "" in the
    3-column form). The header row says which column is which; rows whose cell count does
    not match the header are skipped."""
    columns: list[str] | None = None
    out = []
    for line in section.splitlines():
        if not line.strip().startswith("|"):
            continue
        cells = split_row(line)
        if columns is None:
            names = [HEADERS.get(c.lower(), HEADERS.get(c, "")) for c in cells]
            if "English" in names and "meaning" in names and "简体" in names:
                columns = names
            continue
        if all(set(c) <= set("-: ") for c in cells) or len(cells) != len(columns):
            continue
        row = dict(zip(columns, cells, strict=True))
        out.append({k: row.get(k, "") for k in ("English", "简体", "繁體", "meaning")})
    return out


def glossary(folder: Path = NOTEBOOKS) -> list[dict[str, str]]:
    """Key terms of every course notebook: English, 简体, 繁體, meaning, notebook (the first
    notebook that defines a term wins; a later one may fill in a missing 繁體)."""
    terms: dict[str, dict[str, str]] = {}
    for path in course_notebooks(folder):
        for row in parse_key_terms(_section(_markdown(path), "Key terms")):
            key = row["English"].lower()
            if key in terms:
                if not terms[key]["繁體"] and row["繁體"]:
                    terms[key]["繁體"] = row["繁體"]
                continue
            terms[key] = {**row, "notebook": path.stem[:2]}
    return sorted(terms.values(), key=lambda t: t["English"].lower())
