#!/usr/bin/env python3
"""Turns a bench/shapes.sh results file into its tables: per shape and connection count, each
server's figures, what "in flight" meant, both sides' CPU and the bottleneck, and zena-realtime's
ratios against Bun (deliveries/s: higher is better; latency: lower is better, so a p99 ratio under
1 is a lead). Usage: bench/summarize_shapes.py bench/results/<date>-<time>-shapes.md"""
import re
import sys

from summarize import bottleneck, disturbed, fmt as number, json_lines, server_quota

LINE = re.compile(r'^(\w+) (\w+) busy=(\d+) (\{.*\})\s*$')
SERVERS = ('zena', 'bun', 'ws')
# The share of a CPU the servers were held to (server_quota), set by main().
quota = 1.0


def speed(label, data):
    """What a run of `label` is ranked by: deliveries/s, or for bursts the deliveries per second
    within a burst (the median completion's inverse)."""
    if label.startswith('burst'):
        b = data.get('burst') or {}
        p50 = (b.get('completion_ms') or {}).get('p50') or 0
        return 1 / p50 if p50 > 0 else 0
    return data.get('deliveries_per_s', data.get('frames_per_s', 0))  # the probe's lines: frames/s


def load(path):
    """{(label, connections): {server: data}}, in the order the runs came. A shape run several
    times (shapes.sh's REPEAT) gives each server's median run by speed() (the lower of the middle
    two for an even count), with every run in data['all'] in the order they came."""
    every = {}
    for server, label, busy, data in json_lines(path, LINE):
        data['busy'] = int(busy)
        every.setdefault((label, data['connections']), {}).setdefault(server, []).append(data)
    runs = {}
    for (label, n), by in every.items():
        for server, datas in by.items():
            ranked = sorted(datas, key=lambda d: speed(label, d))
            median = dict(ranked[(len(ranked) - 1) // 2])
            median['all'] = datas
            runs.setdefault((label, n), {})[server] = median
    return runs


def runs_note(label, data):
    """' (median of 3: a, b, c)' for a shape run several times, else ''. Not for bursts: their
    median run is the one of the median completion, which the bursts table lists."""
    rates = [d['deliveries_per_s'] for d in data.get('all', []) if 'deliveries_per_s' in d]
    if len(rates) < 2 or label.startswith('burst'):
        return ''
    return f' (median of {len(rates)}: ' + ', '.join(fmt(r) for r in rates) + ')'


def fmt(n):
    return '' if n is None else number(n)


def ratio(ours, bun):
    return f'{ours / bun:.2f}' if ours is not None and bun else ''


def ms(us):
    return None if us is None else us / 1000


def check(data):
    """'ok', or what went wrong in the run (lost, duplicated, reordered deliveries, early closes),
    in every run of a shape run several times (run i of n). A scheduled run that stopped waiting
    one drain after its last arrival (cut_off) counts what had not come by then as lost: the
    server was that far behind."""
    every = data.get('all', [data])
    found = []
    for i, d in enumerate(every):
        bad = [f'{k} {d[k]}' for k in ('lost', 'duplicates', 'reorders', 'gaps', 'closed_early') if d.get(k)]
        if d.get('cut_off'):
            bad.append('cut off one drain after its last arrival (lost = not delivered by then)')
        if bad:
            found.append((f'run {i + 1} of {len(every)}: ' if len(every) > 1 else '') + ', '.join(bad))
    return '; '.join(found) if found else 'ok'


def cpu_cell(data, wall=None, server_cpu=None, loadgen_cpu=None):
    wall = data['wall_s'] if wall is None else wall
    server_cpu = data['server_cpu_s'] if server_cpu is None else server_cpu
    loadgen_cpu = data['loadgen_cpu_s'] if loadgen_cpu is None else loadgen_cpu
    side = bottleneck('run', {'wall_s': wall, 'server_cpu_s': server_cpu, 'loadgen_cpu_s': loadgen_cpu}, quota)
    others = ''
    if disturbed({**data, 'wall_s': wall}, quota=quota):
        others = f'; disturbed: others took {data["others_cpu_s"]:.1f} s'
    return f'{server_cpu:.2f} / {loadgen_cpu:.2f} / {wall:.2f} s: {side}{others}'


def servers_of(runs):
    return [s for s in SERVERS if any(s in by for by in runs.values())]


def saturated(runs, servers):
    """The window and burst shapes: deliveries/s and latency per server, ratios against Bun."""
    if not any(not label.startswith(('open', 'mixed', 'probe')) for label, _ in runs):
        return
    print('| shape | connections | in flight | ' + ' | '.join(f'{s} deliveries/s' for s in servers) +
          ' | ' + ' | '.join(f'{s} p50 / p99 / p99.9 ms' for s in servers) +
          ' | ours ÷ Bun deliveries/s | ours ÷ Bun p99 | Bun ÷ ours server CPU per delivery | ' +
          ' | '.join(f'{s} CPU server / generator / wall: bottleneck' for s in servers) + ' | checks |')
    print('|---|---|---|' + '---|' * (3 * len(servers) + 4))
    for (label, n), by in runs.items():
        if label.startswith(('open', 'mixed', 'probe')):
            continue
        first = next(iter(by.values()))
        rate = [fmt(by[s]['deliveries_per_s']) + runs_note(label, by[s]) if s in by else '' for s in servers]
        lat = []
        for s in servers:
            if s not in by:
                lat.append('')
                continue
            q = by[s]['latency_us']
            lat.append(f'{ms(q["p50"]):.1f} / {ms(q["p99"]):.1f} / {ms(q["p999"]):.1f}')
        z, b = by.get('zena'), by.get('bun')
        r_rate = ratio(z and z['deliveries_per_s'], b and b['deliveries_per_s'])
        r_p99 = ratio(z and z['latency_us']['p99'], b and b['latency_us']['p99'])
        # Where the generator is the bottleneck, deliveries/s measure it; the server's CPU for
        # each delivery still compares the servers (above 1: Bun spends more).
        per = {k: v['server_cpu_s'] / v['delivered'] for k, v in (('zena', z), ('bun', b))
               if v and v.get('delivered') and v.get('server_cpu_s')}
        r_cpu = ratio(per.get('bun'), per.get('zena'))
        cpu = [cpu_cell(by[s]) if s in by else '' for s in servers]
        checks = '; '.join(f'{s}: {check(by[s])}' for s in servers if s in by)
        print(f'| {label} | {n:,} | {first["in_flight"]} | ' + ' | '.join(rate) + ' | ' + ' | '.join(lat) +
              f' | {r_rate} | {r_p99} | {r_cpu} | ' + ' | '.join(cpu) + f' | {checks} |')


def bursts(runs, servers):
    """Each burst's completion (due to its last delivery), and the deliveries per second within a
    burst: its deliveries over its median completion. The run's own deliveries/s count the idle
    second between bursts, which is the schedule's, not a server's."""
    rows = [(k, by) for k, by in runs.items() if k[0].startswith('burst')]
    if not rows:
        return
    print()
    print('| bursts | connections | ' + ' | '.join(f'{s} completion p50 / max ms' for s in servers) +
          ' | ' + ' | '.join(f'{s} deliveries/s within a burst' for s in servers) +
          ' | ours ÷ Bun completion p50 | ours ÷ Bun deliveries/s within a burst |')
    print('|---|---|' + '---|' * (2 * len(servers) + 2))
    for (label, n), by in rows:
        cells, within = [], {}
        for s in servers:
            b = by.get(s, {}).get('burst')
            every = [d['burst']['completion_ms']['p50'] for d in by[s].get('all', []) if d.get('burst')] if b else []
            note = f'; median of {len(every)}: ' + ', '.join(f'{c:.0f}' for c in every) if len(every) > 1 else ''
            cells.append(f'{b["completion_ms"]["p50"]:.0f} / {b["completion_ms"]["max"]:.0f} '
                         f'({b["completed"]} of {len(by[s]["steps"])} completed{note})' if b else '')
            steps = by.get(s, {}).get('steps') or []
            if b and b['completion_ms']['p50'] > 0 and steps:
                # A burst's deliveries: its messages times their targets (every connection for a
                # fan-out), as the generator counted them.
                within[s] = steps[0]['expected'] / (b['completion_ms']['p50'] / 1000)
        z, bun = by.get('zena', {}).get('burst'), by.get('bun', {}).get('burst')
        r = ratio(z and z['completion_ms']['p50'], bun and bun['completion_ms']['p50'])
        r_within = ratio(within.get('zena'), within.get('bun'))
        print(f'| {label} | {n:,} | ' + ' | '.join(cells) + ' | ' +
              ' | '.join(fmt(within.get(s)) for s in servers) + f' | {r} | {r_within} |')


def open_loop(runs, servers):
    rows = [(k, by) for k, by in runs.items() if k[0] == 'open']
    if not rows:
        return
    print()
    print('Open loop (Poisson arrivals; a step is held when every delivery came and p99 ≤ '
          f'{next(iter(rows[0][1].values()))["hold_p99_ms"]} ms):')
    print()
    print('| connections | rate/s | ' + ' | '.join(f'{s} p50 / p99 / p99.9 ms' for s in servers) +
          ' | ours ÷ Bun p99 | ' + ' | '.join(f'{s} CPU server / generator / s: bottleneck' for s in servers) + ' |')
    print('|---|---|' + '---|' * (2 * len(servers) + 1))
    for (label, n), by in rows:
        rates = sorted({st['rate'] for data in by.values() for st in data['steps']})
        for rate in rates:
            lat, cpu, p99 = [], [], {}
            for s in servers:
                st = next((x for x in by.get(s, {}).get('steps', []) if x['rate'] == rate), None)
                if st is None:
                    lat.append('not run')
                    cpu.append('')
                    continue
                q = st['latency_us']
                p99[s] = q['p99']
                held = '' if st['held'] else (' (not held' + (f', lost {st["lost"]}' if st['lost'] else '') + ')')
                lat.append(f'{ms(q["p50"]):.1f} / {ms(q["p99"]):.1f} / {ms(q["p999"]):.1f}{held}')
                cpu.append(cpu_cell(st, st['seconds'], st['server_cpu_s'], st['loadgen_cpu_s']))
            print(f'| {n:,} | {fmt(rate)} | ' + ' | '.join(lat) + f' | {ratio(p99.get("zena"), p99.get("bun"))} | ' +
                  ' | '.join(cpu) + ' |')
        held = {s: by[s]['held_rate'] for s in servers if s in by}
        cells = ' | '.join(fmt(held.get(s)) for s in servers)
        print(f'| {n:,} | **highest held** | {cells} | {ratio(held.get("zena"), held.get("bun"))} (rates) |' +
              ' |' * len(servers))


def mixed(runs, servers):
    rows = [(k, by) for k, by in runs.items() if k[0] == 'mixed']
    if not rows:
        return
    print()
    print('| mixed | connections | fan-out rate/s | targeted rate/s | ' +
          ' | '.join(f'{s} targeted p50 / p99 / p99.9 ms' for s in servers) + ' | ' +
          ' | '.join(f'{s} fan-out p99 ms' for s in servers) + ' | ours ÷ Bun targeted p99 | checks |')
    print('|---|---|---|---|' + '---|' * (2 * len(servers) + 2))
    for (label, n), by in rows:
        first = next(iter(by.values()))
        tl, fl, p99 = [], [], {}
        for s in servers:
            data = by.get(s)
            if data is None:
                tl.append('')
                fl.append('')
                continue
            q = data['targeted']['latency_us']
            p99[s] = q['p99']
            tl.append(f'{ms(q["p50"]):.1f} / {ms(q["p99"]):.1f} / {ms(q["p999"]):.1f}')
            fl.append(f'{ms(data["steps"][0]["latency_us"]["p99"]):.1f}' if data['steps'] else '')
        checks = '; '.join(f'{s}: {check(by[s])}' for s in servers if s in by)
        print(f'| {label} | {n:,} | {fmt(first["steps"][0]["rate"]) if first["steps"] else ""} | '
              f'{first["targeted"]["rate"]} | ' + ' | '.join(tl) + ' | ' + ' | '.join(fl) +
              f' | {ratio(p99.get("zena"), p99.get("bun"))} | {checks} |')


def probe(runs):
    """The limit probe at each connection count, and the delivery-gated W = 8 fan-out against it
    (issue 17's target: at least 0.8 of the 8-frames-per-call probe at 10,000 connections); left
    out under a CPU quota, which the probe does not run under."""
    rows = sorted({n for (label, n) in runs if label.startswith('probe')})
    if not rows:
        return
    print()
    print('| limit probe | frames/s, 1 per sendmsg | frames/s, 8 per sendmsg | frames/s, 8 gathered, 64 sends per '
          'io_uring_enter | zena delivery_w8 ÷ probe (8) | ÷ probe (8, io_uring) |')
    print('|---|---|---|---|---|---|')
    for n in rows:
        p1 = runs.get(('probe1', n), {}).get('probe', {}).get('frames_per_s')
        p8 = runs.get(('probe8', n), {}).get('probe', {}).get('frames_per_s')
        p8r = runs.get(('probe8r', n), {}).get('probe', {}).get('frames_per_s')
        label = 'big_delivery_w8' if n == 19000 else 'delivery_w8'
        # The probe runs without the servers' CPU quota: no ratio against a capped server.
        ours = runs.get((label, n), {}).get('zena', {}).get('deliveries_per_s') if quota == 1.0 else None
        print(f'| {n:,} sockets | {fmt(p1)} | {fmt(p8)} | {fmt(p8r)} | {ratio(ours, p8)} | {ratio(ours, p8r)} |')


def main():
    global quota
    runs = load(sys.argv[1])
    quota = server_quota(sys.argv[1])
    servers = servers_of(runs)
    saturated(runs, servers)
    bursts(runs, servers)
    open_loop(runs, servers)
    mixed(runs, servers)
    probe(runs)
    busy = [d['busy'] for by in runs.values() for d in by.values()]
    if busy:
        print()
        print(f'Machine busy before the runs (other jobs): median {sorted(busy)[len(busy) // 2]} %, max {max(busy)} %.')


if __name__ == '__main__':
    main()
