"""``search dashboard``: optuna-dashboard on this machine's loopback (unless --host), for one study's storage."""

from __future__ import annotations

import argparse
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

from search.commands._common import add_study_arguments, port_number
from search.errors import UsageError
from search.storage.studies import make_storage, open_study, storage_url

# Loopback by default: the dashboard can rename and delete studies and has no login,
# so anyone who can reach the port can do that.
HOST = "127.0.0.1"
NO_AUTH = "optuna-dashboard has no authentication: anyone who reaches it can rename and delete studies"


class _QuietHandler(WSGIRequestHandler):
    """Log nothing per request: the dashboard polls every few seconds."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class DashboardCommand:
    help = "Serve optuna-dashboard for a study on 127.0.0.1 (Ctrl-C stops it)."
    description = (
        "Start optuna-dashboard (the installed package) against the study's storage,\n"
        "listening on 127.0.0.1 unless --host says otherwise: optuna-dashboard has no\n"
        "authentication, and anyone who reaches it can rename and delete studies. Each\n"
        "trial's user attributes appear there: the architecture as JSON, params, MACs,\n"
        "latency, the learning curve, the outcome and the reason when it failed.\n"
        "--port 0 picks a free port; the URL is printed."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_study_arguments(parser)
        parser.add_argument(
            "--port",
            type=port_number,
            default=8080,
            help="Port to listen on, 0 for any free one (default: 8080).",
        )
        parser.add_argument(
            "--host",
            default=HOST,
            help=(
                f"Address to listen on (default: {HOST}, this machine only). optuna-dashboard has no "
                "authentication: listen elsewhere (0.0.0.0) only on a network you trust."
            ),
        )

    def run(self, args: argparse.Namespace) -> int:
        from optuna_dashboard import wsgi

        open_study(args.study, storage=args.storage)  # fails early, naming the known studies
        # The storage the study is in: its folder's journal.log as well as its study.db.
        app = wsgi(make_storage(storage_url(args.study, args.storage)))
        try:
            server = make_server(args.host, args.port, app, handler_class=_QuietHandler)
        except OSError as error:
            raise UsageError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
        url = f"http://{args.host}:{server.server_port}/dashboard"
        print(f"optuna-dashboard for study {args.study!r} at {url} (Ctrl-C to stop)", flush=True)
        where = "this machine only" if args.host == HOST else f"every client that reaches {args.host}"
        print(f"note: listening for {where}; {NO_AUTH}", file=sys.stderr, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("dashboard stopped", file=sys.stderr)
        finally:
            server.server_close()
        return 0
