"""``edge-agent fleet keygen | sign DOC | push DOC | status``: the operator's side of pushes.

Exit codes: 0 ok (push: every targeted device applied); 1 a device did not apply, the rollout
was aborted or the broker is unreachable; 2 usage or an invalid document.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_agent.fleet.document import DocumentRejected
    from edge_agent.fleet.operator import FleetOperator, RolloutResult

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``fleet`` subcommand and its actions."""
    parser = sub.add_parser(
        "fleet", parents=[common], help="sign and push fleet config documents, watch the fleet"
    )
    actions = parser.add_subparsers(dest="fleet_action", metavar="ACTION", required=True)

    keygen = actions.add_parser("keygen", help="create an Ed25519 key pair <ID>.key / <ID>.pub")
    keygen.add_argument("--key-id", required=True, help="the key's name, e.g. ops-2026")
    keygen.add_argument("--out", type=Path, default=Path(), help="folder (default: here)")
    keygen.set_defaults(func=_keygen)

    sign = actions.add_parser("sign", help="sign a JSON or YAML document; prints the JSON")
    sign.add_argument("doc", type=Path)
    sign.add_argument("--key", type=Path, required=True, help="the <key_id>.key file")
    sign.add_argument("--key-id", help="default: the key file's name without .key")
    sign.add_argument("--out", type=Path, help="write here instead of stdout")
    sign.set_defaults(func=_sign)

    broker = argparse.ArgumentParser(add_help=False)
    broker.add_argument("--host", default="localhost")
    broker.add_argument("--port", type=int, default=1883)
    broker.add_argument("--prefix", default="edge", help="the agents' topic prefix")
    broker.add_argument("--ca-file", help="TLS: CA bundle")
    broker.add_argument("--cert-file", help="TLS: client certificate")
    broker.add_argument("--key-file", help="TLS: client key")
    broker.add_argument("--username")
    broker.add_argument("--password-file", type=Path)
    broker.add_argument("--json", action="store_true", help="machine-readable output")

    push = actions.add_parser("push", parents=[broker], help="publish a document and wait")
    push.add_argument("doc", type=Path)
    who = push.add_mutually_exclusive_group(required=True)
    who.add_argument("--device", nargs="+", metavar="ID", help="device ids")
    who.add_argument("--group", help="a group (its members are found from config/state)")
    push.add_argument("--waves", default="100%", help="e.g. 1,10%%,100%% (default 100%%)")
    push.add_argument("--max-failures", default="0%", help="abort above this (default 0%%)")
    push.add_argument("--min-devices", type=int, default=1, help="before the abort rule applies")
    push.add_argument("--timeout", type=float, default=60.0, help="seconds per wave")
    push.add_argument("--discover-s", type=float, default=1.0, help="wait for retained states")
    push.set_defaults(func=_push)

    status = actions.add_parser("status", parents=[broker], help="which box runs which version")
    status.add_argument("--group")
    status.add_argument("--wait", type=float, default=2.0, help="seconds to listen")
    status.set_defaults(func=_status)


def _read_doc(path: Path) -> dict[str, Any]:
    import yaml

    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a document is a mapping")
    return data


def _print_rejected(err: DocumentRejected) -> int:
    print(f"error: {err.reason}", file=sys.stderr)
    for line in err.errors:
        print(line, file=sys.stderr)
    return EXIT_USAGE


def _keygen(args: argparse.Namespace) -> int:
    from edge_agent.fleet.signing import generate_key

    try:
        private, public = generate_key(args.out, args.key_id)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"private key: {private} (keep it secret)\npublic key:  {public} (copy it into each "
        "device's fleet.trusted_keys folder)"
    )
    return EXIT_OK


def _sign(args: argparse.Namespace) -> int:
    from edge_agent.fleet.document import DocumentRejected, validate_document
    from edge_agent.fleet.signing import load_private_key, sign_document

    try:
        data = _read_doc(args.doc)
        validate_document({**data, "signature": None})
        key = load_private_key(args.key)
    except DocumentRejected as err:
        return _print_rejected(err)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    key_id = args.key_id or args.key.name.removesuffix(".key")
    text = json.dumps(sign_document(data, key, key_id), indent=2, sort_keys=True) + "\n"
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _operator(args: argparse.Namespace, telemetry: bool = False) -> FleetOperator:
    from edge_agent.fleet.operator import FleetOperator

    tls = None
    if args.ca_file or args.cert_file:
        tls = {"ca_certs": args.ca_file, "certfile": args.cert_file, "keyfile": args.key_file}
    password = None
    if args.password_file is not None:
        password = args.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    return FleetOperator(
        args.host,
        args.port,
        args.prefix,
        telemetry=telemetry,
        tls=tls,
        username=args.username,
        password=password,
    )


def _push(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from edge_agent.fleet.document import DocumentRejected, validate_document
    from edge_agent.fleet.rollout import AbortRule, parse_percent, parse_waves

    try:
        doc = _read_doc(args.doc)
        parsed = validate_document(doc)
        waves = parse_waves(args.waves)
        abort = AbortRule(parse_percent(args.max_failures), args.min_devices)
    except DocumentRejected as err:
        return _print_rejected(err)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.group is not None and parsed.target != f"group:{args.group}":
        print(
            f"error: the document targets {parsed.target}, not group:{args.group}", file=sys.stderr
        )
        return EXIT_USAGE
    if args.device and parsed.target.startswith("device:") and args.device != [parsed.target[7:]]:
        print(f"error: the document targets {parsed.target} only", file=sys.stderr)
        return EXIT_USAGE
    if parsed.signature is None:
        print(
            "warning: the document is unsigned; devices with trusted keys reject it",
            file=sys.stderr,
        )
    if parsed.not_before is not None and parsed.not_before > time.time():
        print(
            f"note: not_before is {_utc(parsed.not_before)}: devices report the document "
            "scheduled and apply it then; waves judge acceptance, not health",
            file=sys.stderr,
        )
    try:
        with _operator(args) as op:
            op.settle(args.discover_s)
            devices = list(args.device) if args.device else op.members(args.group)
            if not devices:
                print(
                    f"no devices seen in group {args.group}; published for late joiners",
                    file=sys.stderr,
                )
            console = Console(stderr=True)
            with Progress(console=console, transient=True, disable=args.json) as bar:
                task = bar.add_task(f"v{parsed.version} -> {parsed.target}", total=len(devices))
                result = op.push(
                    doc,
                    devices,
                    group=args.group,
                    waves=waves,
                    abort=abort,
                    timeout_s=args.timeout,
                    progress=lambda done, _n: bar.update(task, completed=done),
                )
    except (OSError, TimeoutError) as err:
        print(f"error: broker {args.host}:{args.port}: {err}", file=sys.stderr)
        return EXIT_RUNTIME
    _print_rollout(result, parsed.version, args.json)
    return EXIT_OK if result.all_accepted and not result.aborted else EXIT_RUNTIME


def _print_rollout(result: RolloutResult, version: int, as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    counts: dict[str, int] = {}
    for outcome in result.outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    if as_json:
        print(
            json.dumps(
                {
                    "version": version,
                    "aborted": result.aborted,
                    "waves_done": result.waves_done,
                    "devices": {
                        d: {"outcome": o, "reason": result.reasons.get(d, "")}
                        for d, o in sorted(result.outcomes.items())
                    },
                    "counts": counts,
                },
                indent=2,
            )
        )
        return
    table = Table(title=f"version {version}")
    for column in ("device", "outcome", "reason"):
        table.add_column(column)
    for device, outcome in sorted(result.outcomes.items()):
        shown = "not reached" if outcome == "pending" else outcome
        table.add_row(device, shown, result.reasons.get(device, ""))
    console = Console()
    console.print(table)
    order = ("applied", "scheduled", "rejected", "rolled_back", "stale", "no_answer", "pending")
    summary = ", ".join(f"{name.replace('_', ' ')} {counts.get(name, 0)}" for name in order[:6])
    console.print(summary + (f"; ABORTED after wave {result.waves_done}" if result.aborted else ""))


def _status(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    try:
        with _operator(args, telemetry=True) as op:
            op.settle(args.wait)
            views = sorted(op.devices.values(), key=lambda v: v.device)
    except (OSError, TimeoutError) as err:
        print(f"error: broker {args.host}:{args.port}: {err}", file=sys.stderr)
        return EXIT_RUNTIME
    now = time.time()
    rows: list[dict[str, Any]] = []
    for view in views:
        state, status, tel = view.state or {}, view.status or {}, view.telemetry or {}
        if args.group is not None and args.group not in (state.get("groups") or []):
            continue
        rows.append(
            {
                "device": view.device,
                "online": status.get("state"),
                "running": state.get("running") or {},
                "config_version": state.get("version"),
                "config_status": state.get("status"),
                "reason": state.get("reason"),
                "scheduled": state.get("scheduled") or {},
                "profile": tel.get("profile"),
                "fps": tel.get("fps"),
                "watts": (tel.get("power") or {}).get("total_w"),
                "perf_per_watt": tel.get("perf_per_watt"),
                "telemetry_age_s": None
                if view.telemetry_at is None
                else round(now - view.telemetry_at, 1),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    table = Table(title=f"fleet under {args.prefix}/")
    for column in (
        "device",
        "online",
        "running",
        "last push",
        "scheduled",
        "profile",
        "fps",
        "W",
        "perf/W",
        "age s",
    ):
        table.add_column(column)

    def num(value: Any) -> str:
        return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)

    for row in rows:
        running = ", ".join(f"{k} v{v}" for k, v in row["running"].items()) or "local"
        last = f"v{row['config_version']} {row['config_status']}" if row["config_status"] else "-"
        waiting = ", ".join(
            f"{k} v{v.get('version')} at {_utc(v.get('not_before'))}"
            for k, v in row["scheduled"].items()
        )
        table.add_row(
            row["device"],
            str(row["online"] or "-"),
            running,
            last,
            waiting or "-",
            str(row["profile"] or "-"),
            num(row["fps"]),
            num(row["watts"]),
            num(row["perf_per_watt"]),
            num(row["telemetry_age_s"]),
        )
    Console().print(table)
    return EXIT_OK


def _utc(seconds: Any) -> str:
    """Unix seconds as ``2026-12-06 02:00Z``."""
    if not isinstance(seconds, int | float):
        return "?"
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%MZ")
