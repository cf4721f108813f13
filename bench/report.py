"""The suite's dated Markdown report and its plots, SVG written by hand (no plotting dependency)."""

from __future__ import annotations

import math
from html import escape
from pathlib import Path
from typing import Any

COLOURS = ("#3b6ea8", "#d9822b", "#6a9f58", "#b04a5a", "#7d5ba6")


def _f(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}{unit}"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "—"
    return f"{value / base:.2f}×"


# -- SVG ----------------------------------------------------------------------------------------
def bar_chart(
    title: str,
    groups: list[str],
    series: dict[str, list[float | None]],
    unit: str,
    reference: tuple[str, list[float]] | None = None,
    log_scale: bool = True,
) -> str:
    """Grouped bars (one group per label, one bar per series), optional reference marks per group."""
    width, height, left, bottom, top = 760, 340, 70, 50, 40
    plot_w, plot_h = width - left - 20, height - bottom - top
    values = [v for vs in series.values() for v in vs if v] + (reference[1] if reference else [])
    hi = max(values or [1.0]) * 1.15
    lo = min(values or [1.0]) / 1.5 if log_scale else 0.0

    def y(v: float) -> float:
        if log_scale:
            share = (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        else:
            share = v / hi
        return top + plot_h * (1 - share)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>']  # fmt: skip
    ticks = _ticks(lo, hi, log_scale)
    for t in ticks:
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    out.append(f'<text x="16" y="{top + plot_h / 2}" transform="rotate(-90 16 {top + plot_h / 2})" '
               f'text-anchor="middle">{escape(unit)}{" (log scale)" if log_scale else ""}</text>')  # fmt: skip
    group_w = plot_w / max(len(groups), 1)
    bar_w = group_w * 0.7 / max(len(series), 1)
    for g, label in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.15
        for s, (_, vs) in enumerate(series.items()):
            v = vs[g] if g < len(vs) else None
            if not v:
                continue
            x = x0 + s * bar_w
            out.append(f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar_w - 2:.1f}" '
                       f'height="{top + plot_h - y(v):.1f}" fill="{COLOURS[s % len(COLOURS)]}"/>')  # fmt: skip
            out.append(f'<text x="{x + bar_w / 2:.1f}" y="{y(v) - 3:.1f}" text-anchor="middle" '
                       f'font-size="10">{v:.3g}</text>')  # fmt: skip
        if reference and g < len(reference[1]):
            ry = y(reference[1][g])
            out.append(f'<line x1="{x0 - 4:.1f}" x2="{x0 + group_w * 0.7 + 4:.1f}" y1="{ry:.1f}" '
                       f'y2="{ry:.1f}" stroke="black" stroke-dasharray="4 3" stroke-width="1.5"/>')  # fmt: skip
        out.append(f'<text x="{x0 + group_w * 0.35:.1f}" y="{top + plot_h + 18}" '
                   f'text-anchor="middle">{escape(label)}</text>')  # fmt: skip
    legend = [*series, *([reference[0]] if reference else [])]
    for i, name in enumerate(legend):
        lx = left + 10 + i * 180
        if reference and name == reference[0]:
            out.append(f'<line x1="{lx}" x2="{lx + 14}" y1="{height - 14}" y2="{height - 14}" '
                       'stroke="black" stroke-dasharray="4 3"/>')  # fmt: skip
        else:
            out.append(
                f'<rect x="{lx}" y="{height - 20}" width="12" height="12" fill="{COLOURS[i % len(COLOURS)]}"/>'
            )
        out.append(f'<text x="{lx + 18}" y="{height - 10}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _ticks(lo: float, hi: float, log_scale: bool) -> list[float]:
    if not log_scale:
        step = 10 ** math.floor(math.log10(hi / 5 or 1))
        return [step * k for k in range(0, int(hi / step) + 1, max(1, int(hi / step) // 5))]
    ticks = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            t = m * 10**e
            if lo <= t <= hi:
                ticks.append(float(t))
    return ticks


# -- Markdown -----------------------------------------------------------------------------------
def _limits_text(limits: dict[str, int | None] | None) -> str:
    if limits is None:
        return "not set (the product has no `provider_concurrency`)"
    return "{" + ", ".join(f"{k} {'unlimited' if v is None else v}" for k, v in limits.items()) + "}"


def _setup_lines(results: dict[str, Any], which: str) -> list[str]:
    """How the product was configured for a section, per bus (``main`` or ``burst``)."""
    lines = []
    for bus in results["buses"]:
        setup = results.get(bus, {}).get("setup", {}).get(which)
        if setup:
            lines.append(
                f"Configuration, {bus}: the demo tenant's `provider_concurrency` "
                f"{_limits_text(setup['provider_concurrency'])} (seeded), `VOICETICKET_MAX_IN_FLIGHT` "
                f"{setup['max_in_flight']} in every product process."
            )
    return [" ".join(lines), ""] if lines else []


def _callbacks_text(row: dict[str, Any]) -> str:
    other = {k: v for k, v in row.get("callback_statuses", {}).items() if not k.startswith("2")}
    return f"; recording callbacks not answered 2xx: {other}" if other else ""


def _pipeline(results: dict[str, Any], bus: str, calls: int) -> dict[str, Any] | None:
    return next((r for r in results.get(bus, {}).get("pipeline", []) if r["calls"] == calls), None)


def _webhook(results: dict[str, Any], bus: str, rate: int) -> dict[str, Any] | None:
    return next((r for r in results.get(bus, {}).get("webhooks", []) if r["rate"] == rate), None)


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, figure, met / not met / not measured)."""
    rows: list[tuple[str, str, str]] = []
    ideal = results["ideal_call_s"]

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("met" if ok else "**not met**")

    for calls, factor in ((50, 1.25), (200, 1.5)):
        for bus in results["buses"]:
            row = _pipeline(results, bus, calls)
            drain = row["drain_s"] if row else None
            complete = row is not None and row["completed"] == row["offered"]
            figure = f"{_f(drain, 2, ' s')} ({_ratio(drain, ideal)} the ideal)" if row else "—"
            if row and not complete:
                figure = f"{row['completed']}/{row['offered']} done within the deadline"
            ok = None if row is None else (complete and drain is not None and drain <= factor * ideal)
            rows.append((f"{calls} simultaneous calls drain ≤ {factor}× ideal ({factor * ideal:.2f} s), {bus}",
                         figure, verdict(ok)))  # fmt: skip
    for bus in results["buses"]:
        burst = results.get(bus, {}).get("burst")
        if burst:
            ratio = burst["drain_s"] / burst["theoretical_min_s"] if burst["drain_s"] else None
            clean = burst["completed"] == burst["calls"] and not burst["duplicates"]
            figure = (f"{burst['calls']} calls: {_f(burst['drain_s'], 1, ' s')} vs minimum "
                      f"{burst['theoretical_min_s']:.1f} s ({_f(ratio, 2, '×')}); "
                      f"{burst['completed']}/{burst['calls']} done, {burst['duplicates']} duplicates")  # fmt: skip
            rows.append((f"burst under limits ≤ 1.1× theoretical minimum, nothing lost or duplicated, {bus}",
                         figure, verdict(clean and ratio is not None and ratio <= 1.1)))  # fmt: skip
    for bus in results["buses"]:
        sat = results.get(bus, {}).get("saturation")
        if sat:
            cps = sat.get("calls_per_s")
            rows.append((f"zero-latency throughput ≥ 20 calls/s, {bus}",
                         f"{_f(cps, 1, ' calls/s')} ({sat['calls']} calls at once)",
                         verdict(None if cps is None else cps >= 20)))  # fmt: skip
    kafka200 = _webhook(results, "kafka", 200)
    if kafka200:
        p99 = kafka200["product"]["p99_ms"]
        rows.append(("webhook p99 ≤ 25 ms at 200 req/s on Kafka", _f(p99, 1, " ms"),
                     verdict(None if p99 is None else p99 <= 25)))  # fmt: skip
    for bus in results["buses"]:
        for rate in (50, 200):
            w = _webhook(results, bus, rate)
            if w:
                p99, bare = w["product"]["p99_ms"], w["bare"]["p99_ms"]
                ok = None if p99 is None or not bare else p99 <= 3 * bare
                rows.append((f"webhook p99 within 3× bare at {rate} req/s, {bus}",
                             f"{_f(p99, 1, ' ms')} vs bare {_f(bare, 1, ' ms')} ({_ratio(p99, bare)})",
                             verdict(ok)))  # fmt: skip
    return rows


def _machine_note(results: dict[str, Any]) -> str:
    if max(results["load_before"]) >= 0.5 * results["cores"]:
        return "other work was running on the machine, so read ratios to the same-run baselines, not absolute times"
    return "the machine was otherwise idle; still, read ratios to the same-run baselines"


def write_report(results: dict[str, Any], path: Path, before: dict[str, Any] | None = None) -> None:
    """``bench/results/<date>.md`` and its SVG plots beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.stem
    lines = [f"# Benchmark — {results['started'][:10]}", ""]
    size = results["size"]
    lines += [
        f"Run {results['started']} → {results['finished']} UTC on {results['cores']} cores "
        f"(load average before: {', '.join(f'{x:.2f}' for x in results['load_before'])}; "
        f"{_machine_note(results)}). "
        f"Size `{results.get('size_name', '?')}`: {size['repeats']} repeat(s) per figure, medians "
        "over repeats; p99 is the nearest-rank 99th percentile within a run, then the median over runs.",
        "",
        "Every process is separate: the product (embedded: one process; Kafka: six service "
        f"processes on a local Kafka 4.x broker, {'Postgres' if results.get('postgres') else 'SQLite'} "
        "databases), the provider stand-ins (one process, OpenAPI validation off, latencies injected "
        "per stage), the load generator (a fresh process per measurement, open loop) and the bare "
        "FastAPI/uvicorn endpoint (the webhook baseline). CPU per call is read from "
        "`/proc/<pid>/stat` of each product process; the harness's CPU is shown apart.",
        "",
        "Stand-in latencies when realistic: "
        + ", ".join(f"{k} {v} s" for k, v in results["stages"].items())
        + f"; their sum, {results['ideal_call_s']:.1f} s, is the ideal for a call (the floor).",
        "",
    ]
    lines += ["## Targets (issue #9)", "", "| target | figure (this run) | |", "|---|---|---|"]
    lines += [f"| {t} | {f} | {v} |" for t, f, v in targets(results)]
    lines.append("")
    if before:
        lines += _before_after(before, results)
    lines += _webhooks_section(results)
    lines += _pipeline_section(results, stem, path.parent)
    lines += _saturation_section(results)
    lines += _budget_section(results)
    lines += _burst_section(results)
    lines += _memory_section(results)
    for name, title in (("transcriber_memory", "Transcriber memory: a 60-minute recording"),
                        ("overload_recovery", "Overload recovery")):  # fmt: skip
        lines += _sibling_section(results.get(name), title, name)
    path.write_text("\n".join(lines) + "\n")


def _before_after(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    lines = ["## Before and after", "",
             f"Before: the code at the issue's start (`{before.get('product_python', '?')}`), run by this same "
             f"harness on {before['started'][:16]} UTC ({before['size']['repeats']} repeat(s)); after: this run.",
             "", "| figure | load | before | after |", "|---|---|---|---|"]  # fmt: skip
    for bus in before["buses"]:
        for calls in (1, 50):
            b, a = _pipeline(before, bus, calls), _pipeline(after, bus, calls)
            if b:
                lines.append(f"| drain, {bus} | {calls} calls at once, realistic latencies | "
                             f"{_drain_text(b)} | {_drain_text(a) if a else '—'} |")  # fmt: skip
        b_sat, a_sat = before.get(bus, {}).get("saturation"), after.get(bus, {}).get("saturation")
        if b_sat:
            lines.append(f"| throughput, {bus} | {b_sat['calls']} calls at once, zero latency | "
                         f"{_f(b_sat.get('calls_per_s'), 1, ' calls/s')} | "
                         f"{_f(a_sat.get('calls_per_s'), 1, ' calls/s') if a_sat else '—'} |")  # fmt: skip
        for rate in (50, 200, 500):
            b, a = _webhook(before, bus, rate), _webhook(after, bus, rate)
            if b:
                lines.append(f"| webhook p50 / p99, {bus} | {rate} req/s | {_webhook_text(b)} | "
                             f"{_webhook_text(a) if a else '—'} |")  # fmt: skip
    return [*lines, ""]


def _drain_text(row: dict[str, Any]) -> str:
    if row["completed"] < row["offered"]:
        return f"{row['completed']}/{row['offered']} done in the deadline"
    return f"{_f(row['drain_s'], 1, ' s')} ({_ratio(row['drain_s'], row['ideal_s'])} ideal)"


def _webhook_text(row: dict[str, Any]) -> str:
    p = row["product"]
    return f"{_f(p['p50_ms'], 1)} / {_f(p['p99_ms'], 1)} ms (bare {_f(row['bare']['p99_ms'], 1)} ms p99)"


def _webhooks_section(results: dict[str, Any]) -> list[str]:
    lines = ["## Webhook latency", "",
             "Signed incoming-call webhooks (`POST /twilio/voice`: signature, line lookup, `call.received` "
             "published, TwiML) offered open-loop at a fixed rate; latency from the planned send instant "
             "to the last byte of the answer. Baseline: the bare endpoint at the same rate, same run.", "",
             *_setup_lines(results, "main"),
             "| bus | load | p50 | p99 | bare p50 | bare p99 | p50 ratio | p99 ratio | answered 200 | other answers | "
             "product CPU per request |", "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for bus in results["buses"]:
        for w in results.get(bus, {}).get("webhooks", []):
            p, b = w["product"], w["bare"]
            other = {k: v for k, v in p["statuses"].items() if k != "200"}
            lines.append(
                f"| {bus} | {w['rate']} req/s × {w['seconds']:g} s × {w['repeats']} | {_f(p['p50_ms'], 1)} ms | "
                f"{_f(p['p99_ms'], 1)} ms | {_f(b['p50_ms'], 1)} ms | {_f(b['p99_ms'], 1)} ms | "
                f"{_ratio(p['p50_ms'], b['p50_ms'])} | {_ratio(p['p99_ms'], b['p99_ms'])} | "
                f"{p['ok']}/{p['sent']} | {other or '—'} | {_f(p['cpu_ms_per_request'], 2, ' ms')} |"
            )
    return [*lines, ""]


def _cpu_text(
    cpu: dict[str, float | None], harness: tuple[str, ...] = ("stand-ins", "load generator")
) -> str:
    product = {k: v for k, v in cpu.items() if k not in harness and v is not None}
    total = sum(product.values())
    parts = ", ".join(f"{k} {v:.1f}" for k, v in product.items())
    side = ", ".join(f"{k} {cpu[k]:.1f}" for k in harness if cpu.get(k) is not None)
    return (
        f"**{total:.1f}** ({parts}); harness: {side}"
        if len(product) > 1
        else f"**{total:.1f}**; harness: {side}"
    )


def _pipeline_section(results: dict[str, Any], stem: str, folder: Path) -> list[str]:
    lines = ["## Pipeline overhead at realistic latencies", "",
             f"N calls hang up at the same instant (their recording status callbacks sent together); "
             f"drain = last SMS accepted by the stand-in − first callback; the ideal is one call's "
             f"{results['ideal_call_s']:.1f} s whatever N. Latency per call: its callback → its SMS.", "",
             *_setup_lines(results, "main"),
             "| bus | load | drain | ideal | drain ratio | latency p50 | latency p99 | exactly one ticket / SMS | "
             "CPU ms per call |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    groups: list[str] = []
    series: dict[str, list[float | None]] = {bus: [] for bus in results["buses"]}
    counts = sorted(
        {r["calls"] for bus in results["buses"] for r in results.get(bus, {}).get("pipeline", [])}
    )
    for n in counts:
        groups.append(f"{n} calls")
        for bus in results["buses"]:
            row = _pipeline(results, bus, n)
            series[bus].append(row["drain_s"] if row else None)
    for bus in results["buses"]:
        for r in results.get(bus, {}).get("pipeline", []):
            lines.append(
                f"| {bus} | {r['calls']} calls at once × {r['repeats']} | {_drain_text(r)} | {r['ideal_s']:.1f} s | "
                f"{_ratio(r['drain_s'], r['ideal_s'])} | {_f(r['latency_p50_s'], 2, ' s')} | "
                f"{_f(r['latency_p99_s'], 2, ' s')} | {r['exactly_one_ticket']} / {r['exactly_one_sms']} of "
                f"{r['offered']}{_callbacks_text(r)} | {_cpu_text(r['cpu_ms_per_call'])} |"
            )
    if groups:
        svg = bar_chart("Drain time of N simultaneous calls (realistic latencies) vs the ideal", groups,
                        {f"{bus} drain" if True else bus: v for bus, v in series.items()}, "seconds",
                        ("ideal (4.1 s)", [results["ideal_call_s"]] * len(groups)))  # fmt: skip
        (folder / f"{stem}-pipeline.svg").write_text(svg)
        lines += ["", f"![drain time per load and bus]({stem}-pipeline.svg)"]
    return [*lines, ""]


def _saturation_section(results: dict[str, Any]) -> list[str]:
    lines = ["## Saturation throughput with zero-latency providers", "",
             "All stand-in latencies zero; N calls hang up at once; throughput = N / drain. CPU per call "
             "per product process from /proc, the harness apart.", "",
             *_setup_lines(results, "main"),
             "| bus | load | calls/s | drain | latency p50 / p99 | exactly one ticket / SMS | CPU ms per call |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for bus in results["buses"]:
        s = results.get(bus, {}).get("saturation")
        if s:
            lines.append(
                f"| {bus} | {s['calls']} calls at once × {s['repeats']} | {_f(s.get('calls_per_s'), 1)} | "
                f"{_f(s['drain_s'], 2, ' s')} | {_f(s['latency_p50_s'], 2)} / {_f(s['latency_p99_s'], 2)} s | "
                f"{s['exactly_one_ticket']} / {s['exactly_one_sms']} of {s['offered']} | "
                f"{_cpu_text(s['cpu_ms_per_call'])} |"
            )
    for bus in results["buses"]:
        prof = results.get(bus, {}).get("profile")
        if not prof:
            continue
        run = results[bus].get("profile_run", {})
        lines += ["", f"### Where the time goes ({bus}, cProfile, {results[bus]['profile_calls']} calls at once)",
                  "", f"A separate run under cProfile (which slows it; only shares matter): "
                  f"{prof['total_s']} s of profiled CPU in the product process over the whole run, "
                  f"drain {_f(run.get('drain_s'), 1, ' s')}.", "",
                  "| package (own time) | share |", "|---|---|"]  # fmt: skip
        lines += [f"| {escape(p)} | {share} % |" for p, share in prof["packages"]]
        lines += ["", "| function | own ms | cumulative ms | calls |", "|---|---|---|---|"]
        lines += [f"| `{f}` | {t} | {c} | {n} |" for t, c, n, f in prof["functions"]]
    return [*lines, ""]


HARNESS = ("stand-ins", "load generator")
DRAIN_TARGETS = {50: 1.25, 200: 1.5}
"""Issue #9's drain targets: N simultaneous calls within this factor of the ideal."""
THROUGHPUT_TARGET = 20.0
"""Issue #9's zero-latency throughput target, calls per second."""


def cpu_budget(row: dict[str, Any], cores: int, target_s: float | None) -> dict[str, Any]:
    """What the CPU a run used allows: the shortest drain it permits, and the product CPU per call
    a target drain of ``target_s`` would allow (None: no target for this load).

    Two bounds, from CPU per call alone (the broker and Postgres come on top, so both are lower
    bounds): all the CPU the run needs, product and harness, spread over every core; and the
    busiest single product process, which runs on one core at a time (the GIL; the embedded product
    is one process)."""
    cpu = row["cpu_ms_per_call"]
    n = row["calls"]
    product = {k: v for k, v in cpu.items() if k not in HARNESS and v is not None}
    harness = sum(v for k, v in cpu.items() if k in HARNESS and v is not None)
    total = sum(product.values())
    busiest = max(product, key=lambda k: product[k]) if product else None
    all_cores = n * (total + harness) / 1000 / cores
    one_core = n * (product[busiest] if busiest else 0.0) / 1000
    out: dict[str, Any] = {
        "calls": n,
        "product_ms": total,
        "harness_ms": harness,
        "busiest": busiest,
        "busiest_ms": product.get(busiest) if busiest else None,
        "floor_s": max(all_cores, one_core),
        "floor_all_cores_s": all_cores,
        "floor_one_process_s": one_core,
        "target_s": target_s,
    }
    if target_s is not None:
        budget_ms = target_s * 1000 / n
        out["allowed_product_ms"] = max(budget_ms * cores - harness, 0.0)
        out["allowed_busiest_ms"] = budget_ms
    return out


def _budget_section(results: dict[str, Any]) -> list[str]:
    cores = int(results["cores"])
    ideal = results["ideal_call_s"]
    rows = []
    for bus in results["buses"]:
        for r in results.get(bus, {}).get("pipeline", []):
            factor = DRAIN_TARGETS.get(r["calls"])
            rows.append((bus, f"{r['calls']} calls, realistic", r["drain_s"],
                         cpu_budget(r, cores, factor * ideal if factor else None)))  # fmt: skip
        sat = results.get(bus, {}).get("saturation")
        if sat:
            rows.append((bus, f"{sat['calls']} calls, zero latency", sat["drain_s"],
                         cpu_budget(sat, cores, sat["calls"] / THROUGHPUT_TARGET)))  # fmt: skip
    if not rows:
        return []
    lines = ["## CPU budget: what the targets need", "",
             f"How short a drain the CPU per call measured above permits on these {cores} cores, and what "
             "CPU per call a target would allow. Two lower bounds (the Kafka broker and Postgres use CPU "
             "on top): the whole run's CPU, product and harness, spread over every core; and the busiest "
             "product process, which runs on one core at a time (Python's GIL; the embedded product is a "
             "single process). A drain target below the floor cannot be met without less CPU per call. "
             "Allowed: the product CPU per call (all processes; the busiest one) at which the floor "
             "equals the target, with the harness's CPU as measured. The zero-latency row's target is "
             f"its calls at {THROUGHPUT_TARGET:g} calls/s.", "",
             "| bus | load | drain | CPU floor (all cores / one process) | target | product CPU per call now "
             "(busiest process) | allowed by the target (busiest) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for bus, load, drain, b in rows:
        allowed = (f"{b['allowed_product_ms']:.0f} ms ({b['allowed_busiest_ms']:.0f} ms)"
                   if b["target_s"] is not None else "—")  # fmt: skip
        target = _f(b["target_s"], 2, " s") if b["target_s"] is not None else "—"
        busiest = f"{b['busiest']} {b['busiest_ms']:.0f} ms" if b["busiest"] else "—"
        lines.append(
            f"| {bus} | {load} | {_f(drain, 2, ' s')} | {b['floor_s']:.2f} s ({b['floor_all_cores_s']:.2f} / "
            f"{b['floor_one_process_s']:.2f}) | {target} | "
            f"{b['product_ms']:.0f} ms ({busiest}) | {allowed} |"
        )
    return [*lines, ""]


def _burst_section(results: dict[str, Any]) -> list[str]:
    lines = ["## Burst under provider limits", ""]
    found = False
    for bus in results["buses"]:
        b = results.get(bus, {}).get("burst")
        if not b:
            continue
        found = True
        limits = ", ".join(f"{k} {'unlimited' if v is None else v}" for k, v in b["limits"].items())
        setup = results[bus].get("setup", {}).get("burst")
        window = f", `VOICETICKET_MAX_IN_FLIGHT` {setup['max_in_flight']}" if setup else ""
        if not b.get("limits_applied", True):
            lines += [
                f"**{bus}: the product's config has no tenant `provider_concurrency` yet**, so the burst "
                "ran without limits; the minimum below is what the limits would allow, and the peaks show "
                "how hard an unlimited burst hits each provider.",
                "",
            ]
        lines += [
            f"**{bus}**: {b['calls']} calls hang up at once, realistic latencies, tenant "
            f"`provider_concurrency` {{{limits}}}{window}. Theoretical minimum (the slowest limited stage's waves "
            f"plus the other stages once): {b['theoretical_min_s']:.1f} s. Drain "
            f"{_f(b['drain_s'], 1, ' s')} ({_ratio(b['drain_s'], b['theoretical_min_s'])} the minimum); "
            f"latency p50 {_f(b['latency_p50_s'], 1, ' s')}, p99 {_f(b['latency_p99_s'], 1, ' s')}; "
            f"{b['completed']}/{b['calls']} done, exactly one ticket {b['exactly_one_ticket']}, exactly one SMS "
            f"{b['exactly_one_sms']}, {b['duplicates']} duplicates{_callbacks_text(b)}.",
            "",
            "| stage | limit | peak concurrent requests seen by the stand-in |",
            "|---|---|---|",
        ]
        stage_limit = {"speech-to-text": "speech_to_text", "llm": "llm", "jira-create": "jira", "sms": "sms"}
        for stage, peak in b["peak_in_flight"].items():
            lines.append(f"| {stage} | {b['limits'].get(stage_limit[stage], '—')} | {peak} |")
        lines.append("")
        lines.append(f"CPU ms per call: {_cpu_text(b['cpu_ms_per_call'])}.")
        lines.append("")
    if not found:
        lines += ["Not run at this size (`--size modest` runs 200 calls, `full` 1,000, on both buses).", ""]
    return lines


def _memory_section(results: dict[str, Any]) -> list[str]:
    lines = ["## Memory", "", "Resident set per product process: idle (after start-up), and after the webhook, "
             "pipeline and saturation loads (now / peak since start, VmHWM).", "",
             "| bus | process | idle RSS | after load: RSS | peak RSS |", "|---|---|---|---|---|"]  # fmt: skip
    for bus in results["buses"]:
        idle, after = (
            results.get(bus, {}).get("memory_idle", {}),
            results.get(bus, {}).get("memory_after_load", {}),
        )
        for name, m in idle.items():
            a = after.get(name, {})
            lines.append(f"| {bus} | {name} | {m['rss_mib']} MiB | {a.get('rss_mib', '—')} MiB | "
                         f"{a.get('peak_mib', '—')} MiB |")  # fmt: skip
    return [*lines, ""]


def _sibling_section(result: dict[str, Any] | None, title: str, name: str) -> list[str]:
    lines = [f"## {title}", ""]
    if result is None:
        return [*lines, f"`bench/{name}.py` is not in this tree; not measured.", ""]
    lines.append(f"`{result['command']}` (exit {result['returncode']}, {result['seconds']} s):")
    lines.append("")
    body = result.get("report") or result.get("stdout") or result.get("stderr") or "(no output)"
    body = "\n".join(line for line in body.splitlines() if not line.startswith("# "))
    return [*lines, body.strip(), ""]
