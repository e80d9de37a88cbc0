"""The `textlab` command's entry point: `textlab app` starts the web app here, every other
command goes to ``analysis.cli``.

Starting Streamlit's server is UI work, so it lives above the library (which never imports
Streamlit). The job worker starts with the server, not with the first page view, so a run
cut off by a restart carries on even if nobody opens the app.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from analysis import cli
from analysis.errors import TextlabError
from analysis.workshop import is_configured
from ui.resources import app_path

# The settings of .streamlit/config.toml that matter for privacy and big corpora, passed on
# the command line so that `textlab app` keeps them from any working directory.
APP_FLAGS = {
    "server.headless": "true",
    "browser.gatherUsageStats": "false",
    "server.maxUploadSize": "1024",
    "server.maxMessageSize": "1024",
    "server.fileWatcherType": "none",
    "runner.postScriptGC": "false",  # see .streamlit/config.toml: a full GC per rerun halved job speed
    "client.toolbarMode": "minimal",
    "client.showSidebarNavigation": "false",
    "client.showErrorDetails": "none",
    "theme.base": "light",
    "theme.primaryColor": "#2563eb",
}


def _use_the_router_for_every_url() -> None:
    """Make a fresh server run app.py (the router) for deep links too.

    Until app.py has called st.navigation once, Streamlit serves a URL like /coding by
    running pages/coding.py on its own (the old multipage mode for a pages/ folder): after a
    restart, a bookmarked page came up without its sidebar, page setup or job worker.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without it has no such mode
        return
    if hasattr(PagesManager, "uses_pages_directory"):
        PagesManager.uses_pages_directory = False


def start_workshop(root: str, args):
    """Set up (or reopen) the workshop of ``root``, start the one shared worker for every
    participant who joined before (their interrupted runs resume), and print the codes."""
    from analysis.jobs import manager_for, shared_scheduler
    from analysis.workshop import Limits, Workshop

    limits = None
    given = {"upload_mb": args.max_upload_mb, "rows_per_project": args.max_rows, "quota_mb": args.quota_mb,
             "queued_jobs": args.max_queued, "max_participants": args.max_participants}
    if any(v is not None for v in given.values()):
        old = Workshop(root).limits if is_configured(root) else Limits()
        limits = Limits.from_dict({**old.__dict__, **{k: v for k, v in given.items() if v is not None}})
    workshop, shown = Workshop.configure(root, join_code=args.join_code, facilitator_code=args.facilitator_code,
                                         limits=limits)
    os.environ["TEXTLAB_WORKSHOP"] = "1"
    scheduler = shared_scheduler()
    for person in workshop.participants():
        manager_for(workshop.workspace_root(person.id), scheduler=scheduler, queue_limit=workshop.limits.queued_jobs)
    lim = workshop.limits
    print(f"textlab: workshop mode, {len(workshop.participants())} participant(s) so far; workspaces under "
          f"{workshop.root / 'participants'}", file=sys.stderr)
    for key, label in (("join_code", "join code (for participants)"), ("facilitator_code", "facilitator code")):
        print(f"textlab: {label}: " + (shown[key] if key in shown else "as set before (give --"
                                         + key.replace("_", "-") + " to change it)"), file=sys.stderr)
    print(f"textlab: limits per participant: files up to {lim.upload_mb:g} MB, {lim.rows_per_project:,} texts per "
          f"project, {lim.quota_mb:g} MB on disk, {lim.queued_jobs} analyses at once; {lim.max_participants} "
          f"participants at most", file=sys.stderr)
    print(f"textlab: open http://{args.address}:{args.port} (participants: this machine's address on the network; "
          "start with --address 0.0.0.0 to let them in)", file=sys.stderr)
    return workshop


def serve(args) -> int:
    app = app_path()  # in the package (a wheel install) or at the root of a clone
    if not app.is_file():
        raise TextlabError(f"The app ({app}) is missing from this copy of Textlab; reinstall it from the "
                           "repository with `pip install .` (or `pip install -e .` in a clone).")
    if args.workspace:
        os.environ["TEXTLAB_HOME"] = str(Path(args.workspace).expanduser().resolve())
    from streamlit.web import cli as streamlit_cli

    from analysis.jobs import manager_for

    _use_the_router_for_every_url()
    root = os.environ.get("TEXTLAB_HOME") or "workspace"
    extra: dict[str, object] = {}
    if getattr(args, "workshop", False):
        workshop = start_workshop(root, args)
        extra["server.maxUploadSize"] = max(1, math.ceil(workshop.limits.upload_mb))
    else:
        os.environ.pop("TEXTLAB_WORKSHOP", None)
        manager = manager_for(root)
        if args.address not in ("127.0.0.1", "localhost", "::1"):
            print(f"textlab: warning: listening on {args.address}: the app has no login, so anyone who can reach "
                  "this machine's port can open, export and delete every project. Serve others only on a network "
                  "you trust, or start it with --workshop (a private workspace for each participant).",
                  file=sys.stderr)
        print(f"textlab: workspace {manager.workspace.root}; open http://{args.address}:{args.port} in a browser",
              file=sys.stderr)
    flags = [f"--{k}={v}" for k, v in {**APP_FLAGS, **extra, "server.port": args.port,
                                        "server.address": args.address}.items()]
    streamlit_cli.main(["run", str(app), *flags], prog_name="streamlit", standalone_mode=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "app":
        return cli.main(argv)
    args = cli.build_parser().parse_args(argv)  # the same options and help as every command
    try:
        return serve(args)
    except TextlabError as exc:
        print(f"textlab: error: {exc}", file=sys.stderr)
        return cli.EXIT_USAGE


if __name__ == "__main__":  # python -m ui.launch app
    sys.exit(main())
