"""The `textlab` command's entry point: `textlab app` starts the web app here, every other
command goes to ``analysis.cli``.

Starting Streamlit's server is UI work, so it lives above the library (which never imports
Streamlit). The job worker starts with the server, not with the first page view, so a run
cut off by a restart carries on even if nobody opens the app.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from analysis import cli
from analysis.errors import TextlabError
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
    manager = manager_for(os.environ.get("TEXTLAB_HOME") or "workspace")
    if args.address not in ("127.0.0.1", "localhost", "::1"):
        print(f"textlab: warning: listening on {args.address}: the app has no login, so anyone who can reach this "
              "machine's port can open, export and delete every project. Serve others only on a network you trust.",
              file=sys.stderr)
    print(f"textlab: workspace {manager.workspace.root}; open http://{args.address}:{args.port} in a browser",
          file=sys.stderr)
    flags = [f"--{k}={v}" for k, v in {**APP_FLAGS, "server.port": args.port, "server.address": args.address}.items()]
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
