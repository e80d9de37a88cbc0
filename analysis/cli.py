"""The ``textlab`` command: the app's analyses for corpora too big for a browser session.

Progress goes to stderr; a user error is one line on stderr and exit status 2. Each
analysis runs through the same job machinery as the app, in a project of the workspace
(``--workspace``, ``TEXTLAB_HOME`` or ``./workspace``): if a run is cut off, running the
same command again resumes it from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import __version__
from .errors import TextlabError
from .tasks import available_tasks

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _add_column_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-column", help="column holding the texts (default: the suggested one)")
    # 'none' is corpus.ROW_IDS, written out so that `textlab --help` need not import pandas.
    p.add_argument("--id-column", help="column of unique document ids (default: the suggested id column; "
                                       "'none' numbers the rows: doc-000001, ...)")
    p.add_argument("--group-column", help="column of groups to compare (region, party, ...)")
    p.add_argument("--date-column", help="column of dates")
    p.add_argument("--date-order", choices=("day-first", "month-first"),
                   help="how dates like 04/03/2021 are read (default: the order the column shows, e.g. a day "
                        "above 12; a column that shows none needs this)")
    p.add_argument("--sheet", help="sheet name or number for Excel files (default: the first)")


def task_flags() -> dict[str, list[tuple[str, object]]]:
    """Every ``textlab analyze`` option that a task's Config declares (``setting(flag=...)``):
    flag -> [(task name, Setting)], in registry order. The options shared by every task
    (BaseConfig's backend, model, device, batch size) are listed under each task."""
    from .tasks import get_task

    found: dict[str, list[tuple[str, object]]] = {}
    for name in available_tasks():
        for setting in get_task(name).Config.settings():
            if setting.flag:
                found.setdefault(setting.flag, []).append((name, setting))
    return found


def _dest(flag: str) -> str:
    return flag[2:].replace("-", "_")


def _add_task_options(p: argparse.ArgumentParser, also: tuple[str, ...] = ()) -> dict:
    """The analyses' options, generated from their Config settings: one group for the options
    every analysis takes, then one per analysis that has options of its own (or is named in
    ``also``: it gets options the command adds). Each option's default is None (not given:
    the Config's default). Returns task name -> its group."""
    from .tasks import get_task
    from .tasks.base import BaseConfig

    names = available_tasks()
    base = {s.flag: s for s in BaseConfig.settings() if s.flag}
    flags = task_flags()
    shared = [f for f in flags if f in base and {n for n, _ in flags[f]} == set(names)]
    own = {name: [f for f, owners in flags.items() if f not in shared and owners[0][0] == name] for name in names}
    plain = [name for name in names if not own[name] and name not in also]
    common = p.add_argument_group("options of every analysis",
                                  f"--task {', '.join(plain)} take{'s' if len(plain) == 1 else ''} only these."
                                  if plain else None)
    groups = {name: p.add_argument_group(f"--task {name} ({get_task(name).title})")
              for name in names if own[name] or name in also}

    def add(group, flag: str, setting, others: list[str]) -> None:
        help_text = setting.help
        if setting.default not in (None, False) and "default" not in help_text:
            help_text += f" (default: {setting.default})"
        if others:
            help_text += f"; also for --task {', --task '.join(others)}"
        kwargs: dict = {"dest": _dest(flag), "default": None, "help": help_text.replace("%", "%%")}
        if setting.value_type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs.update(type=setting.value_type, choices=setting.choices, metavar=setting.metavar)
        try:
            group.add_argument(flag, **kwargs)
        except argparse.ArgumentError as exc:
            raise ValueError(f"The option {flag} of --task {flags[flag][0][0]} clashes with another "
                             f"textlab analyze option: {exc}") from exc

    for flag in shared:
        add(common, flag, base[flag], [])
    for name in names:
        for flag in own[name]:
            add(groups[name], flag, flags[flag][0][1], [n for n, _ in flags[flag][1:]])
    return groups


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="textlab",
        description="Textlab: local text analysis for social scientists. Nothing leaves this machine.",
    )
    parser.add_argument("--version", action="version", version=f"textlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("analyze", help="run analyses on a file and write the coded dataset")
    p.add_argument("input", help="CSV, TSV, XLSX, JSON(L), Parquet, Stata, SPSS, TXT or ZIP file")
    p.add_argument("-o", "--output", required=True, help="output file; its extension picks the format (.csv .xlsx .parquet .dta .sav)")
    _add_column_options(p)
    p.add_argument("--task", action="append", metavar="TASK",
                   help=f"analysis to run, repeatable; one of {', '.join(available_tasks())} (default: stats)")
    groups = _add_task_options(p, also=("summary",))
    groups.get("summary", p).add_argument(  # not a run setting: what the command writes besides
        "--summary-by", metavar="COL",
        help="with --task summary: also summarise each group of COL (a column, code_label or topic_label) "
             "into OUT.summaries.csv, with the sentences' sources")
    groups.get("summary", p).add_argument(
        "--summary-llm", action="store_true",
        help="with --summary-by: a generative model also summarises each group's sentences, citing them "
             "(llm_summary, llm_cited); the server of --llm-url, else the embedded model")
    p.add_argument("--bom", action="store_true", help="write a UTF-8 byte-order mark in CSV output (for Excel)")
    p.add_argument("--no-neutralize", action="store_true",
                   help="keep cells starting with = + - @ as they are in CSV/XLSX (default: prefix with ' against formula injection)")
    p.add_argument("--fresh", action="store_true", help="rerun even if an identical finished run exists in the workspace")
    e = p.add_argument_group("where the analyses run")
    e.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process (default); ray: model workers on a Ray cluster (pip install "
                        "\"textlab[ray]\"), same results and checkpoints, so a run resumes on either")
    e.add_argument("--ray-address", metavar="ADDR",
                   help="with --engine ray: the cluster to join (auto: the one `ray start` made on this machine; "
                        "HOST:6379) (default: start a local Ray instance)")
    e.add_argument("--ray-workers", type=int, metavar="N",
                   help="with --engine ray: model workers (default: one per CPU of the cluster, or one per GPU "
                        "when the run uses GPUs)")
    p.add_argument("--estimate", action="store_true",
                   help="with --backend llm: say how many prompt tokens the run sends and how long it takes (from "
                        "a probe of 3 texts, whose answers are kept for the run), then stop without running")
    p.add_argument("--workspace", help="workspace folder (default: $TEXTLAB_HOME or ./workspace)")

    p = sub.add_parser("validate", help="agreement between model codes and human codes")
    p.add_argument("input", help="CSV, TSV, XLSX, JSON(L), Parquet, Stata, SPSS or ZIP file with the code columns")
    p.add_argument("--pred", required=True, help="column of model codes")
    p.add_argument("--gold", required=True, action="append", help="column of human codes, repeatable (one per coder)")
    p.add_argument("--multi-label", action="store_true", help="codes are ';'-joined sets (e.g. 'Housing;Health care')")
    p.add_argument("--out", help="write the report: .json (everything) or .csv (one tidy table)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95%% intervals (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: 0)")
    p.add_argument("--sheet", help="sheet name or number for Excel files (default: the first)")
    p.add_argument("--no-neutralize", action="store_true",
                   help="keep codes starting with = + - @ as they are in the --out CSV (default: prefix with ' against formula injection)")

    p = sub.add_parser("estimate", help="shares of each code corrected by a random human sample (prediction-powered "
                                        "inference), beside the model-only shares")
    p.add_argument("input", help="a file with a column of model codes for every text and human codes for a sample")
    p.add_argument("--pred", required=True, help="column of model codes (every text)")
    p.add_argument("--gold", required=True, action="append",
                   help="column of human codes; empty where nobody hand-coded the text (repeat for several coders: "
                        "their majority is used, a tie split evenly)")
    p.add_argument("--by", metavar="GROUP", help="also estimate each group of this column")
    p.add_argument("--formula", metavar="F",
                   help='a regression instead of shares: "CODE ~ col + col" (CODE a code of --pred, or --pred itself '
                        'for a score; Q("Health care") for a code with spaces)')
    p.add_argument("--regression", choices=["ols", "logistic"], default="ols",
                   help="with --formula: ols (linear probability for a code; default) or logistic")
    p.add_argument("--estimand", choices=["auto", "share", "mean"], default="auto",
                   help="share of each code, or mean of a numeric score (default: a mean for fractional numbers)")
    p.add_argument("--multi-label", action="store_true", default=None,
                   help="codes are ';'-joined sets (default: when a model value holds ';')")
    p.add_argument("--plan", type=int, nargs="?", const=50, metavar="N",
                   help="also say how wide each corrected share's (or --formula coefficient's) interval would be "
                        "with N more random hand codes (default 50)")
    p.add_argument("--assume-accuracy", type=float, metavar="A",
                   help="with --plan, before any hand coding: plan from an assumed accuracy of the model on each code "
                        "(e.g. 0.85) instead of the agreement of the hand-coded texts")
    p.add_argument("--sampling-weights", metavar="COL",
                   help="inverse inclusion probabilities of the hand-coded rows (default: they are a simple random sample)")
    p.add_argument("--level", type=float, default=0.95, help="confidence level (default: 0.95)")
    p.add_argument("--out", help="write the estimates: .csv (long format, for Stata/R) or .json (with the notes)")
    p.add_argument("--methods", metavar="OUT.md",
                   help="write a methods paragraph (models, hand-coding sample, agreement, estimator, references)")
    p.add_argument("--manifest", action="append", metavar="FILE.json",
                   help="run manifest(s) for --methods: the .manifest.json that textlab analyze writes beside its "
                        "output (a list) or one manifest; repeatable")
    p.add_argument("--sheet", help="sheet name or number for Excel files (default: the first)")

    p = sub.add_parser("models", help="list models or download them for offline use")
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    msub.add_parser("list", help="registered models and whether they are on this machine")
    d = msub.add_parser("download", help="download models (needs internet) where an offline machine can use them")
    d.add_argument("names", nargs="+", metavar="NAME")
    d.add_argument("--to", help="folder to save into (default: $TEXTLAB_MODELS or <workspace>/models)")

    p = sub.add_parser("llm", help="start a language-model server for --backend llm, or list a server's models")
    lsub = p.add_subparsers(dest="llm_command", required=True, metavar="ACTION")
    s = lsub.add_parser("serve", help="serve a model over the OpenAI-compatible API (vLLM on a GPU, else "
                                      "transformers serve); the app and --llm-url then use it")
    s.add_argument("model", nargs="?", help="model folder or Hugging Face name (default: the embedded "
                                            "SmolLM2-135M-Instruct)")
    s.add_argument("--engine", choices=("auto", "vllm", "transformers"), default="auto",
                   help="auto: vLLM when it is installed (pip install vllm; needs a CUDA GPU), else transformers serve")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 lets the local "
                        "network send texts to it, e.g. a workshop's laptops)")
    s.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    s.add_argument("--device", default="auto", help="transformers engine: cpu, cuda or auto")
    s.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vLLM: share of GPU memory to use")
    s.add_argument("--max-model-len", type=int, help="vLLM: longest prompt + answer in tokens (lower it to save memory)")
    s.add_argument("--allow-download", action="store_true",
                   help="let the engine download a model named by its Hugging Face id (default: offline)")
    s.add_argument("--dry-run", action="store_true", help="print the server command instead of running it")
    m = lsub.add_parser("list", help="the models a server offers (what the app's Test connection shows)")
    m.add_argument("url", help="the server's address, e.g. http://127.0.0.1:11434/v1")
    m.add_argument("--allow-remote", action="store_true", help="a server outside this machine and its network")

    p = sub.add_parser("app", help="start the web app; its job worker starts with the server and resumes interrupted runs")
    p.add_argument("--port", type=int, default=8501, help="port to serve on (default: 8501)")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 lets anyone on the "
                        "network open every project: there is no login)")
    p.add_argument("--workspace", help="workspace folder (default: $TEXTLAB_HOME or ./workspace)")
    w = p.add_argument_group("workshop mode (many participants, each with a private workspace)")
    w.add_argument("--workshop", action="store_true",
                   help="participants join with a join code and a name and each get a private workspace; one "
                        "worker serves everyone in fair turns; a facilitator page (with the facilitator code)")
    w.add_argument("--join-code", help="the code participants type to join (default: kept from the last start, "
                                       "or made up and printed)")
    w.add_argument("--facilitator-code", help="the code of the facilitator page (default: kept, or made up and printed)")
    w.add_argument("--max-upload-mb", type=float, help="largest file a participant may upload (default 50)")
    w.add_argument("--max-rows", type=int, help="most texts in one participant's project (default 20,000)")
    w.add_argument("--quota-mb", type=float, help="disk space of one participant's workspace (default 500)")
    w.add_argument("--max-queued", type=int, help="analyses one participant may have waiting or running (default 3)")
    w.add_argument("--max-participants", type=int, help="participants who may join (default 100)")

    p = sub.add_parser("info", help="show how a file is read, the suggested columns and a data-quality report")
    p.add_argument("input")
    _add_column_options(p)
    p.add_argument("--json", action="store_true", help="print every figure as JSON instead of a readable summary")
    return parser


def _read_kwargs(args) -> dict:
    kwargs = {}
    if getattr(args, "sheet", None) is not None:
        kwargs["sheet"] = int(args.sheet) if str(args.sheet).isdigit() else args.sheet
    if getattr(args, "date_order", None) is not None:
        kwargs["date_order"] = args.date_order  # load_corpus takes it with the reading options
    return kwargs


def _load(args):
    from .corpus import load_corpus

    corpus, report = load_corpus(
        args.input, text_column=args.text_column, id_column=args.id_column,
        group_column=args.group_column, date_column=args.date_column, **_read_kwargs(args),
    )
    for item in report.skipped:
        print(f"textlab: skipped {item.where}: {item.reason}", file=sys.stderr)
    for warning in report.warnings:
        print(f"textlab: warning: {warning}", file=sys.stderr)
    return corpus, report


def _task_config(task, args) -> dict:
    """The CLI options that apply to this task, as its config dict (the options come from the
    tasks' Config settings: see ``task_flags``)."""
    mine = {s.flag: s.name for s in task.Config.settings() if s.flag}
    config = {}
    for flag, name in mine.items():
        value = getattr(args, _dest(flag), None)
        if value is not None:
            config[name] = value
    if "backend" in mine.values() and args.model and config.get("backend", "auto") == "auto":
        # A model named on the command line is wanted: with --backend auto a missing one is an
        # error with the download command, not a quiet fall-back to the lexicon.
        config["backend"] = "transformers"
    ignored = [flag for flag in task_flags() if flag not in mine and getattr(args, _dest(flag), None) is not None]
    if ignored:
        print(f"textlab: note: {', '.join(ignored)} does not apply to --task {task.name}", file=sys.stderr)
    return config


class _StderrProgress:
    """A tqdm bar on stderr that survives resumes (it starts at the checkpointed count)."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None

    def __call__(self, done: int, total: int, rate: float) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, initial=done, desc=self.label, unit="doc", file=sys.stderr,
                            dynamic_ncols=True, mininterval=0.5)
        if done > self.bar.n and getattr(self, "_stage", ""):
            self._stage = ""  # texts are moving again: the stage ("Loading the model") is over
            self.bar.set_postfix_str("", refresh=False)
        if getattr(self, "tokens_per_text", None) and rate:
            self.bar.set_postfix_str(f"{rate * self.tokens_per_text:,.0f} prompt tokens/s", refresh=False)
        self.bar.update(done - self.bar.n)

    def loaded(self, description: dict) -> None:
        self.tokens_per_text = (description.get("planned") or {}).get("prompt_tokens_per_text")

    def stage(self, message: str) -> None:
        """Work without per-text progress (loading, fine-tuning, clustering): shown on the bar;
        repeats of one message (a step counter) at most twice a second."""
        import time

        now = time.monotonic()
        new_stage = message != getattr(self, "_stage", "")
        if self.bar is not None and (new_stage or now - getattr(self, "_last_stage", 0.0) >= 0.5):
            self._last_stage, self._stage = now, message
            self.bar.set_postfix_str(message, refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_analyze(args) -> int:
    from dataclasses import fields

    from .export import format_from_path, manifest_bytes, write_table
    from .jobs import WorkerBeat, make_owner
    from .tasks import get_task
    from .workspace import Workspace, corpus_hash, data_hash

    output = Path(args.output)
    format_from_path(output)  # a wrong extension fails now, not after an hour of analysis
    tasks = [get_task(name) for name in dict.fromkeys(args.task or ["stats"])]
    if args.summary_llm and not args.summary_by:
        raise TextlabError("--summary-llm summarises groups: give the groups with --summary-by COL.")
    model_tasks = [t.name for t in tasks if "model" in {f.name for f in fields(t.Config)} and t.name != "stats"]
    if args.model and len(model_tasks) > 1:
        raise TextlabError(
            f"--model names one model, but --task {' and --task '.join(model_tasks)} each need their own. "
            "Run one command per task, each with its own --model."
        )
    engine = _engine(args)
    configs = {}
    for task in tasks:
        config = task.Config.from_dict(_task_config(task, args))
        task.validate(config)
        engine.check(task, config)  # Ray installed, the task splits into chunks: said before the corpus is read
        configs[task.name] = config.to_dict()

    corpus, report = _load(args)
    workspace = Workspace(args.workspace)
    project = workspace.find_project(corpus_hash(corpus), corpus.text_column)
    if project is None:
        project = workspace.create_project(Path(args.input).stem, corpus, import_report=_report_dict(report))
    elif project.info.data_hash != data_hash(corpus):
        # Same ids and texts, other metadata: the output must show the file given now.
        update = project.update_corpus(corpus, import_report=_report_dict(report))
        print(f"textlab: {args.input} has the texts of project {project.id} with other columns "
              f"({update.describe()}); the project now holds this file", file=sys.stderr)
    owner = make_owner()
    beat = WorkerBeat(workspace, owner).start()  # others can tell this process alive (or dead)
    print(f"textlab: {len(corpus)} rows from {args.input} (text column '{corpus.text_column}'); project {project.id} in {workspace.root}", file=sys.stderr)

    if args.estimate:
        beat.stop()
        return _estimate(project, tasks, configs)
    try:
        runs = _run_tasks(workspace, project, tasks, configs, owner, args, engine=engine)
    finally:
        beat.stop()

    frame = project.results_frame(runs)
    manifests = [project.manifest(r.id) for r in runs.values()]
    codebook = next((m.get("codebook") for m in manifests if m.get("task") == "coding"), None)
    info = project.info
    result = write_table(frame, output, bom=args.bom, neutralize=not args.no_neutralize, runs=manifests,
                         codebook=codebook, date_columns=[info.date_column] if info.date_column else None,
                         date_order=corpus.date_order or info.date_order)  # --date-order of this call first
    for warning in result.warnings:
        print(f"textlab: warning: {warning}", file=sys.stderr)
    manifest_path = output.with_name(output.stem + ".manifest.json")
    manifest_path.write_bytes(manifest_bytes(manifests))
    print(f"textlab: wrote {len(frame)} rows x {len(frame.columns)} columns to {output} (manifest: {manifest_path})", file=sys.stderr)
    if "topics" in runs:
        _write_topics_table(project, runs["topics"], output, args)
    if args.summary_by:
        _write_group_summaries(project, frame, output, args)
    return 0


def _estimate(project, tasks, configs: dict) -> int:
    from .jobs import run_context
    from .tasks import prompting

    llm_tasks = [t for t in tasks if configs[t.name].get("backend") == "llm"]
    if not llm_tasks:
        raise TextlabError("--estimate sizes a run of a generative model: use it with --backend llm.")
    context = run_context(project, project.corpus())
    for task in llm_tasks:
        config = task.Config.from_dict(configs[task.name])
        task.check(config, context)
        print(f"textlab: {task.name}: {prompting.describe_estimate(prompting.estimate(task, config, context))}",
              file=sys.stderr)
    return 0


def _engine(args):
    """The engine of --engine (with --ray-address/--ray-workers): not a run setting."""
    from .engines import Engine

    name = getattr(args, "engine", None) or "local"
    return Engine(name, address=getattr(args, "ray_address", None), workers=getattr(args, "ray_workers", None))


def _run_tasks(workspace, project, tasks, configs: dict, owner: str, args, engine=None) -> dict:
    """Each task's finished run: reused when the same data and settings were run, resumed
    from its checkpoints when it was cut off, else run now (on ``engine``: default local;
    the engine is not a setting, so a run of either engine is reused or resumed)."""
    from .jobs import execute_run, owner_is_dead, run_context

    runs = {}
    context = run_context(project, project.corpus())  # what the runs read: texts and hand codes
    for task in tasks:  # what the corpus must hold (template fields, coded rows): said before any model loads
        task.check(task.Config.from_dict(configs[task.name]), context)
    for task in tasks:
        config = configs[task.name]
        inputs = task.input_fingerprint(task.Config.from_dict(config), context)
        run = None if args.fresh else project.find_run(task.name, config, ("done",), inputs=inputs)
        if run is not None:
            print(f"textlab: {task.name}: reusing the finished run {run.id} (same data and settings; --fresh to rerun)", file=sys.stderr)
            runs[task.name] = run
            continue
        run = project.find_run(task.name, config, ("interrupted", "failed", "running", "queued"), inputs=inputs)
        if run is not None and (run.status in ("interrupted", "failed")
                                or owner_is_dead(run.owner, run.heartbeat, workspace)):
            if run.status in ("running", "queued"):
                workspace.update_run(run.id, status="interrupted")
            print(f"textlab: {task.name}: resuming run {run.id} from its last checkpoint ({run.n_done} of {run.n_total} done)", file=sys.stderr)
        else:
            run = project.create_run(task.name, config, n_total=0, inputs=inputs)
        progress = _StderrProgress(task.name)
        try:
            runs[task.name] = execute_run(workspace, run.id, owner=owner, on_progress=progress,
                                           on_stage=progress.stage, on_loaded=progress.loaded, engine=engine)
        finally:
            progress.close()
    return runs


def _write_group_summaries(project, frame, output: Path, args) -> None:
    """Representative sentences per group, with the doc ids they come from, beside the output."""
    from .export import write_table
    from .tasks.summary import group_summaries_table, summarize_groups

    if args.summary_by not in frame.columns:
        raise TextlabError(f"--summary-by: no column '{args.summary_by}' (columns: {', '.join(map(str, frame.columns))}).")
    info = project.info
    backend = None
    if args.summary_llm:
        from .tasks import prompting
        from .tasks.base import LLMConfig

        # The summary task's --model is a seq2seq model; the LLM is a server or the embedded one.
        config = LLMConfig(backend="llm", device=args.device or "auto", llm_url=args.llm_url,
                           llm_model=args.llm_model, allow_remote=bool(args.allow_remote))
        prompting.validate_llm(config)
        backend = prompting.load_backend(config)
    try:
        table = summarize_groups(frame[info.text_column].fillna("").astype(str).tolist(), frame["doc_id"].tolist(),
                                 frame[args.summary_by], cache_dir=project.embeddings_dir,
                                 device=args.device or "auto", llm_backend=backend)
    finally:
        if backend is not None:
            prompting.close_backend(backend)
    path = output.with_name(output.stem + ".summaries" + (output.suffix if output.suffix in (".csv", ".xlsx", ".tsv") else ".csv"))
    write_table(group_summaries_table(table).rename(columns={"group": args.summary_by}), path, bom=args.bom,
                neutralize=not args.no_neutralize)
    print(f"textlab: summaries of {len(table)} groups of '{args.summary_by}': {path}", file=sys.stderr)


def _write_topics_table(project, run, output: Path, args) -> None:
    """The topics beside the output: id, label, size, share, keywords, representative texts."""
    import pandas as pd

    from .export import write_table

    manifest = project.manifest(run.id)
    corpus = project.corpus()
    text_of = dict(zip(corpus.doc_ids, corpus.texts))
    rows = [{
        "topic_id": t["topic_id"], "topic_label": t["topic_label"], "size": t["size"], "share": t["share"],
        "keywords": ", ".join(t["keywords"]),
        "representative_doc_ids": "; ".join(t["representative_doc_ids"]),
        "representative_texts": " | ".join(text_of.get(d, "")[:300] for d in t["representative_doc_ids"]),
    } for t in manifest.get("topics", [])]
    path = output.with_name(output.stem + ".topics" + (output.suffix if output.suffix in (".csv", ".xlsx", ".tsv") else ".csv"))
    write_table(pd.DataFrame(rows), path, bom=args.bom, neutralize=not args.no_neutralize)
    info = manifest.get("topics_info", {})
    print(f"textlab: {info.get('topics', len(rows))} topics, {info.get('outlier_share', 0):.1%} outliers; "
          f"topics table: {path}", file=sys.stderr)


def _report_dict(report) -> dict:
    from dataclasses import asdict

    return asdict(report)


def cmd_info(args) -> int:
    # Only the light corpus module: no model, torch or transformers import, so that info on a
    # survey file takes about a second (the quality report counts tokens with `tokenizers`).
    from .corpus import load_corpus, quality_report, suggest_columns

    corpus, report = load_corpus(
        args.input, text_column=args.text_column, id_column=args.id_column,
        group_column=args.group_column, date_column=args.date_column, **_read_kwargs(args),
    )
    # Suggestions for the file's own columns (a doc_id column used as the ids is one of them).
    table = corpus.data if corpus.id_column == "doc_id" else corpus.data.drop(columns=["doc_id"])
    suggestion = suggest_columns(table)
    quality = quality_report(corpus)
    out = {
        "file": report.source,
        "format": report.format,
        "encoding": report.encoding,
        "delimiter": report.delimiter,
        "rows": report.rows,
        "columns": report.columns,
        "skipped": [f"{s.where}: {s.reason}" for s in report.skipped],
        "warnings": report.warnings,
        "suggested_columns": {"text": suggestion.text, "id": suggestion.id, "group": suggestion.group, "date": suggestion.date},
        "used_columns": {"text": corpus.text_column, "id": corpus.id_column,
                         "group": corpus.group_column, "date": corpus.date_column},
        "quality": quality.to_dict(),
    }
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    else:
        print(_info_summary(out, corpus))
    return 0


def _info_summary(info: dict, corpus) -> str:
    """`textlab info` for a person: how the file was read, the columns, problems, quality."""
    quality = info["quality"]
    delimiter = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(info["delimiter"], info["delimiter"])
    how = ", ".join(x for x in (info["format"].upper(), info["encoding"],
                                f"{delimiter}-separated" if delimiter else None) if x)
    roles = lambda columns: " · ".join(f"{role}: {name}" for role, name in columns.items() if name) or "none"  # noqa: E731
    ids = corpus.doc_ids
    id_source = f"column {corpus.id_column}" if corpus.id_column else "row numbers"
    lines = [
        info["file"],
        f"  read as     {how}: {info['rows']:,} rows, {len(info['columns'])} columns",
        f"  columns     {_listed(info['columns'], 12)}",
        f"  suggested   {roles(info['suggested_columns'])}",
        f"  used        {roles(info['used_columns'])}",
        f"  ids         from {id_source} ({ids[0]} … {ids[-1]})" if ids else "  ids         none",
    ]
    for title, items in (("Warnings", info["warnings"]), ("Skipped", info["skipped"])):
        if items:
            lines.append(f"{title} ({len(items)})")
            lines += [f"  - {item}" for item in items[:20]]
            if len(items) > 20:
                lines.append(f"  ... and {len(items) - 20} more (--json lists them all)")
    words, tokens = quality["words"], quality["tokens"]
    empty = (f", {quality['empty']:,} empty ({_listed(quality['empty_ids'], 5, quality['empty'])})"
             if quality["empty"] else ", none empty")
    duplicates = f"{quality['duplicates']:,}"
    if quality["duplicate_examples"]:
        snippet, count = quality["duplicate_examples"][0]
        duplicates += f' (most often: "{snippet}" ×{count})'
    long = f"{quality['long_texts']:,}"
    if quality["long_texts"]:
        long += (f" ({_listed(quality['long_ids'], 5, quality['long_texts'])}): "
                 f"a model reading {quality['long_threshold']} tokens cuts them")

    def spread(d: dict) -> str:
        return f"median {d['median']:,.0f}, mean {d['mean']:,.1f}, 95% at most {d['p95']:,.0f}, longest {d['max']:,}"

    lines += [
        "Data quality",
        f"  texts             {quality['rows']:,}{empty}",
        f"  exact duplicates  {duplicates}",
        f"  words per text    {spread(words)}",
        f"  tokens per text   {spread(tokens)} (all-MiniLM-L6-v2 word pieces)",
        f"  over {quality['long_threshold']} tokens   {long}",
        "All figures as JSON: textlab info FILE --json",
    ]
    return "\n".join(lines)


def _listed(values: list, limit: int, total: int | None = None) -> str:
    total = len(values) if total is None else total
    shown = ", ".join(map(str, values[:limit]))
    return shown + (f", … ({total:,} in all)" if total > limit else "")


def cmd_models(args) -> int:
    from . import models

    if args.models_command == "list":
        rows = models.list_models()
        header = ("name", "task", "backend", "available", "hf_id")
        widths = [max(len(str(r.get(h) or "")) for r in rows + [dict(zip(header, header))]) for h in header]
        for r in [dict(zip(header, header))] + rows:
            print("  ".join(str(r.get(h) if r.get(h) is not None else "-").ljust(w) for h, w in zip(header, widths)))
        return 0
    for name in args.names:
        path = models.download(name, to=Path(args.to) if args.to else None)
        print(f"textlab: {name} saved to {path}", file=sys.stderr)
    return 0


def _fmt(value, digits: int = 3) -> str:
    import math

    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def _report_input(args, what: str):
    """The --out path (checked first: .json or .csv) and the table of the input file."""
    from .corpus import read_file

    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".json", ".csv"):
        raise TextlabError(f"--out {args.out}: {what} written as .json or .csv; use one of those extensions.")
    frame, report = read_file(args.input, **_read_kwargs(args))
    for warning in report.warnings:
        print(f"textlab: warning: {warning}", file=sys.stderr)
    return out, frame


def _write_report(out: Path, data: bytes, what: str) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except OSError as exc:
        raise TextlabError(f"Cannot write {what} to {out}: {exc.strerror}.") from exc


def cmd_validate(args) -> int:
    from .validation import agreement

    out, frame = _report_input(args, "the report is")
    golds = list(dict.fromkeys(args.gold))
    unknown = [c for c in [args.pred, *golds] if c not in frame.columns]
    if unknown:
        raise TextlabError(
            f"{', '.join(repr(c) for c in unknown)} {'is' if len(unknown) == 1 else 'are'} not a column of {args.input}. "
            f"Columns: {', '.join(map(str, frame.columns))}."
        )
    gold = frame[golds[0]] if len(golds) == 1 else {g: frame[g] for g in golds}
    result = agreement(frame[args.pred], gold, multi_label=args.multi_label, n_boot=args.n_boot, seed=args.seed,
                       pred_name=args.pred)
    level = f"{result.level:.0%}"
    print(f"{args.input}: {result.n_rows:,} rows; {result.main_comparison}: {result.n_compared:,} compared, "
          f"{result.n_missing:,} left out" + (" (multi-label)" if result.multi_label else ""))
    summary = result.summary.assign(
        value=result.summary["value"].map(_fmt),
        **{f"{level} CI": [f"{_fmt(lo)} to {_fmt(hi)}" for lo, hi in zip(result.summary["ci_low"], result.summary["ci_high"])]},
    )[["comparison", "metric", "value", f"{level} CI", "n"]]
    print()
    print(summary.to_string(index=False))
    per_code = result.per_code.assign(
        **{c: result.per_code[c].map(_fmt) for c in ("precision", "recall", "f1")},
        **{f"f1 {level} CI": [f"{_fmt(lo)} to {_fmt(hi)}" for lo, hi in zip(result.per_code["f1_ci_low"], result.per_code["f1_ci_high"])]},
    )[["code", "precision", "recall", "f1", f"f1 {level} CI", "support", "predicted"]]
    print(f"\nPer code ({result.main_comparison}; support = human count, predicted = model count):")
    print(per_code.to_string(index=False))
    for note in result.notes:
        print(f"note: {note}")
    if out is not None:
        if out.suffix.lower() == ".json":
            data = json.dumps(result.to_dict(), indent=2, ensure_ascii=False).encode("utf-8")
        else:
            data = result.to_csv_bytes(neutralize=not args.no_neutralize)
        _write_report(out, data, "the report")
        print(f"textlab: wrote the report to {out}", file=sys.stderr)
    return 0


def cmd_estimate(args) -> int:
    from .export import export_table
    from .inference import corrected_regression, corrected_shares, plan_coefficients, plans

    if args.manifest and not args.methods:
        raise TextlabError("--manifest describes the models in the methods paragraph: give --methods OUT.md too.")
    if args.assume_accuracy is not None and args.plan is None:
        raise TextlabError("--assume-accuracy is for planning: give --plan [N] too.")
    manifests = _read_manifests(args.manifest)  # read first: a bad file fails before any work
    out, frame = _report_input(args, "the estimates are")
    if args.formula:
        if args.by:
            raise TextlabError("--by and --formula do not go together: put the group column in the formula "
                               '(e.g. "Housing ~ region").')
        table, notes = corrected_regression(frame, args.pred, args.gold, args.formula, model=args.regression,
                                            weights=args.sampling_weights, level=args.level,
                                            multi_label=args.multi_label)
    else:
        table, notes = corrected_shares(frame, args.pred, args.gold, by=args.by, weights=args.sampling_weights,
                                        level=args.level, multi_label=args.multi_label, estimand=args.estimand)
    shown = table.assign(estimate=table["estimate"].map(_fmt),
                         ci=[f"{_fmt(lo)} to {_fmt(hi)}" for lo, hi in zip(table["ci_low"], table["ci_high"])])
    columns = ["estimand", "code", "group", "estimator", "estimate", "ci", "n_human", "n_model"]
    if not args.formula and not args.by:
        columns.remove("group")
    print(shown[columns].to_string(index=False))
    for note in notes:
        print(f"note: {note}")
    if args.plan is not None:
        if args.formula:
            try:
                planned = plan_coefficients(frame, args.pred, args.gold, args.formula, model=args.regression,
                                            weights=args.sampling_weights, more=args.plan, level=args.level,
                                            multi_label=args.multi_label, assumed_accuracy=args.assume_accuracy)
            except TextlabError as exc:
                if "too few to plan" in str(exc):
                    raise TextlabError(f"{exc} (--assume-accuracy A, e.g. 0.85)") from None
                raise
        else:
            planned = plans(frame, args.pred, args.gold, weights=args.sampling_weights, more=args.plan,
                            level=args.level, multi_label=args.multi_label, estimand=args.estimand,
                            assumed_accuracy=args.assume_accuracy)
        for plan in planned:
            print(f"plan: {plan.describe()}")
    if out is not None:
        if out.suffix.lower() == ".json":
            data = json.dumps({"estimates": json.loads(table.to_json(orient="records")), "notes": notes,
                               "level": args.level, "pred": args.pred, "gold": args.gold, "formula": args.formula,
                               "regression": args.regression if args.formula else None},
                              indent=2, ensure_ascii=False).encode("utf-8")
        else:
            data = export_table(table, "csv", name=out.stem).data  # formulas neutralised, like every export
        _write_report(out, data, "the estimates")
        print(f"textlab: wrote {len(table)} estimates to {out}", file=sys.stderr)
    if args.methods:
        _write_methods(args, frame, table, notes, manifests)
    return 0


def _read_manifests(paths: list[str] | None) -> list[dict]:
    """The run manifests of --manifest files: each a JSON list of manifests or one manifest."""
    found: list[dict] = []
    for path in paths or []:
        try:
            data = json.loads(Path(path).read_text("utf-8"))
        except OSError as exc:
            raise TextlabError(f"Cannot read the manifest {path}: {exc.strerror or exc}.") from None
        except ValueError as exc:
            raise TextlabError(f"The manifest {path} is not JSON ({exc}).") from None
        items = data if isinstance(data, list) else [data]
        if not all(isinstance(m, dict) for m in items):
            raise TextlabError(f"The manifest {path} holds no run manifests (JSON objects).")
        found += items
    return found


def _write_methods(args, frame, table, notes: list[str], manifests: list[dict]) -> None:
    """The methods paragraph of these estimates, with the agreement of --pred and --gold."""
    import pandas as pd

    from .inference import EstimateReport
    from .provenance import REFERENCES, methods_paragraph, split_hand_coding
    from .validation import agreement

    golds = list(dict.fromkeys(args.gold))
    settings = {"pred": args.pred, "gold": golds, "by": args.by, "formula": args.formula,
                "regression": args.regression, "level": args.level, "multi_label": args.multi_label}
    design = f"weights: {args.sampling_weights}" if args.sampling_weights else "simple random (assumed)"
    recorded = (split_hand_coding(manifests)[1] or {}).get("design")
    if recorded and args.sampling_weights == "sample_weight":
        # The Export page's file: its sample_weight column holds the recorded design's weights, so the
        # paragraph describes that design (the manifest's hand-coding entry) rather than a bare column.
        design = f"recorded: {recorded.get('design')}"
    else:
        manifests = split_hand_coding(manifests)[0]
    report = EstimateReport(table, list(notes), settings, design)
    column = frame[args.pred]
    values = pd.to_numeric(column, errors="coerce").dropna()
    score = (pd.api.types.is_numeric_dtype(column) and len(values) and not (values == values.round()).all()) or (
        table["estimand"] == "mean").any()
    found = None
    if not score:  # agreement of codes (kappa, alpha, F1); a score has no such agreement
        multi = args.multi_label if args.multi_label is not None else column.astype(str).str.contains(";").any()
        gold = frame[golds[0]] if len(golds) == 1 else {g: frame[g] for g in golds}
        try:
            found = agreement(column, gold, multi_label=bool(multi), pred_name=args.pred)
        except TextlabError as exc:
            print(f"textlab: warning: no agreement in the methods paragraph: {exc}", file=sys.stderr)
    text = methods_paragraph(manifests=manifests, n_texts=len(frame), agreement=found, report=report,
                             references=REFERENCES)
    _write_report(Path(args.methods), text.encode("utf-8"), "the methods paragraph")
    print(f"textlab: wrote the methods paragraph to {args.methods}", file=sys.stderr)


def llm_server_command(args) -> tuple[list[str], str, dict[str, str]]:
    """The command that serves ``args.model``, the URL it will answer at and its environment."""
    import importlib.util
    import os
    import shutil

    from . import llm

    model = args.model or str(llm.embedded_model_folder().resolve())
    if Path(model).expanduser().exists():
        model = str(Path(model).expanduser().resolve())  # the name clients send: the same from any folder
    engine = args.engine
    if engine == "auto":
        engine = "vllm" if importlib.util.find_spec("vllm") is not None else "transformers"
    if engine == "vllm":
        if importlib.util.find_spec("vllm") is None:
            raise TextlabError("vLLM is not installed: pip install vllm (on a machine with a CUDA GPU), or use "
                               "--engine transformers.")
        program = [shutil.which("vllm")] if shutil.which("vllm") else [sys.executable, "-m", "vllm.entrypoints.cli.main"]
        command = program + ["serve", model, "--host", args.host, "--port", str(args.port),
                             "--gpu-memory-utilization", str(args.gpu_memory_utilization), "--seed", "0"]
        if args.max_model_len:
            command += ["--max-model-len", str(args.max_model_len)]
    else:
        command = [sys.executable, "-m", "transformers.cli.transformers", "serve", model, "--host", args.host,
                   "--port", str(args.port), "--device", args.device]
    env = dict(os.environ)
    if not args.allow_download:
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.setdefault("VLLM_NO_USAGE_STATS", "1")  # no usage statistics leave the machine
    env.setdefault("DO_NOT_TRACK", "1")
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    return command, f"http://{host}:{args.port}/v1", env


def cmd_llm(args) -> int:
    import os

    from . import llm

    if args.llm_command == "list":
        for model in llm.list_models(args.url, allow_remote=args.allow_remote):
            print(model["id"])
        return 0
    command, url, env = llm_server_command(args)
    model = command[command.index("serve") + 1]
    print(f"textlab: serving {model} at {url}; use it with --backend llm --llm-url {url} --llm-model {model} "
          "(or the app's Language model settings)", file=sys.stderr)
    if args.dry_run:
        print(" ".join(command))
        return 0
    sys.stderr.flush()
    os.execvpe(command[0], command, env)  # the server is this process: Ctrl+C or a kill stops it
    return 0  # pragma: no cover - exec does not return


def cmd_app(args) -> int:
    # The library never imports Streamlit: the `textlab` command starts the app through
    # ui.launch (above this layer). Reached only as `python -m analysis.cli app`.
    raise TextlabError("Start the app with `textlab app` (or `python -m ui.launch app` from the repository).")


def main(argv: list[str] | None = None) -> int:
    # Only Textlab's own log lines get the "textlab:" prefix; libraries keep their own output.
    # The handler is removed again on return, so that main() called from Python (or tests)
    # leaves logging as it found it.
    handler_ = logging.StreamHandler(sys.stderr)
    handler_.setFormatter(logging.Formatter("textlab: %(message)s"))
    package_log = logging.getLogger("analysis")
    saved = (package_log.level, package_log.propagate)
    installed = not package_log.handlers
    if installed:
        package_log.addHandler(handler_)
        package_log.setLevel(logging.INFO)
        package_log.propagate = False
    try:
        return _main(argv)
    finally:
        if installed:
            package_log.removeHandler(handler_)
            package_log.setLevel(saved[0])
            package_log.propagate = saved[1]


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = {"analyze": cmd_analyze, "info": cmd_info, "models": cmd_models, "validate": cmd_validate,
               "app": cmd_app, "llm": cmd_llm, "estimate": cmd_estimate}[args.command]
    try:
        return handler(args)
    except TextlabError as exc:
        print(f"textlab: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("textlab: interrupted. Run the same command again to resume from the last checkpoint.", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # python -m analysis.cli
    sys.exit(main())
