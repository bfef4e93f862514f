#!/usr/bin/env python3
"""Turns a bench/run.sh results file into the tables of a dated summary: one row per scenario,
one column per server, and the ratios the issue asks for (ours / Bun, ours / ws, ours / the
probe). Usage: bench/summarize.py bench/results/<date>-<time>.md"""
import json
import re
import sys

LINE = re.compile(r'^(\w+)(?: (\w+))?(?: rss_before_kib=(\d+))? (\{.*\})\s*$')


def json_lines(path, pattern):
    """Each line of a results file that `pattern` matches: its groups, the last one (the
    generator's JSON object) parsed. Shared by the summaries of run.sh, channels.sh and shapes.sh."""
    for line in open(path, encoding='utf-8'):
        m = pattern.match(line)
        if m:
            *groups, body = m.groups()
            yield (*groups, json.loads(body))


def load(path):
    runs, probe = {}, {}
    for server, scenario, rss_before, data in json_lines(path, LINE):
        if server == 'probe':
            probe[data['batch']] = data
            continue
        if rss_before:
            data['rss_before_kib'] = int(rss_before)
        runs[(server, scenario)] = data
    return runs, probe


def fmt(n):
    return f'{n:,.0f}' if n >= 100 else f'{n:,.2f}'


def main():
    runs, probe = load(sys.argv[1])
    quota = server_quota(sys.argv[1])
    servers = [s for s in ('zena', 'ws', 'bun') if any(k[0] == s for k in runs)]
    rows = []

    def row(label, value, better='higher'):
        values = {s: value(runs, s) for s in servers}
        if values.get('zena') is None:
            return
        cells = ['' if values[s] is None else fmt(values[s]) for s in servers]
        ratios = []
        for peer in ('bun', 'ws'):
            if values.get(peer) and values.get('zena') is not None:
                ratios.append(f'{values["zena"] / values[peer]:.2f}')
            else:
                ratios.append('')
        rows.append((label, cells, ratios, better))

    def get(scenario, *path):
        def value(runs, server):
            data = runs.get((server, scenario))
            if data is None:
                return None
            for key in path:
                data = data[key]
            return data
        return value

    def ms(scenario, *path):
        def value(runs, server):
            us = get(scenario, *path)(runs, server)
            return None if us is None else us / 1000
        return value

    def idle_kib(runs, server):
        data = runs.get((server, 'idle'))
        if data is None:
            return None
        return (data['server_rss_idle_kib'] - data['rss_before_kib']) / data['connections']

    row('idle memory, KiB per connection', idle_kib, 'lower')
    row('connect, handshakes/s (idle run)', get('idle', 'handshakes_per_s'))
    row('fan-out, deliveries/s (8 in flight)', get('fanout', 'deliveries_per_s'))
    row('fan-out latency p50, ms', ms('fanout', 'latency_us', 'p50'), 'lower')
    row('fan-out latency p99, ms', ms('fanout', 'latency_us', 'p99'), 'lower')
    row('fan-out at 40/s: latency p50, ms', ms('fanout_rate', 'latency_us', 'p50'), 'lower')
    row('fan-out at 40/s: latency p99, ms', ms('fanout_rate', 'latency_us', 'p99'), 'lower')
    row('targeted, publishes/s', get('targeted', 'deliveries_per_s'))
    row('targeted latency p50, µs', get('targeted', 'latency_us', 'p50'), 'lower')
    row('targeted latency p99, µs', get('targeted', 'latency_us', 'p99'), 'lower')
    row('batch (/api/batch of 50), messages/s', get('batch', 'deliveries_per_s'))
    row('Ask chunk latency p50, ms', ms('ask', 'ask', 'latency_us', 'p50'), 'lower')
    row('Ask chunk latency p99, ms', ms('ask', 'ask', 'latency_us', 'p99'), 'lower')
    row('fan-out with permessage-deflate, deliveries/s', get('fanout_deflate', 'deliveries_per_s'))
    row('fan-out with permessage-deflate, latency p99, ms', ms('fanout_deflate', 'latency_us', 'p99'), 'lower')

    print('| scenario | ' + ' | '.join(servers) + ' | ours ÷ Bun | ours ÷ ws | better |')
    print('|---|' + '---|' * len(servers) + '---|---|---|')
    for label, cells, ratios, better in rows:
        print(f'| {label} | ' + ' | '.join(cells) + f' | {ratios[0]} | {ratios[1]} | {better} |')

    if probe and ('zena', 'fanout') in runs:
        ours = runs[('zena', 'fanout')]['deliveries_per_s']
        print()
        print('| limit probe | frames/s | ours (fan-out) ÷ probe |')
        print('|---|---|---|')
        for batch, data in sorted(probe.items()):
            print(f'| {batch} frame(s) per sendmsg | {fmt(data["frames_per_s"])} | {ours / data["frames_per_s"]:.2f} |')

    print()
    print('| run | server CPU s | generator CPU s | wall s | bottleneck | lost | duplicated | reordered |')
    print('|---|---|---|---|---|---|---|---|')
    for (server, scenario), data in runs.items():
        print(f'| {server} {scenario} | {data["server_cpu_s"]} | {data["loadgen_cpu_s"]} | {data["wall_s"]} | '
              f'{bottleneck(scenario, data, quota)} | {data["lost"]} | {data["duplicates"]} | {data["reorders"]} |')


# A run is disturbed when others took more than this share of its wall time in CPU
# (others_cpu_s: /proc/stat less the server's and the generator's own).
DISTURBED = 0.10


def disturbed(d, wall_key='wall_s', quota=1.0):
    """Whether others took more than DISTURBED of the run's wall time. Not under a CPU quota:
    there the kernel work charged to no process, which counts as others, grows while the
    throttled server's CPU idles (bench/README.md), so only the quiet check before each run
    (busy=) tells of other jobs."""
    if quota < 1.0:
        return False
    return d.get('others_cpu_s', 0) > DISTURBED * max(d.get(wall_key, 0), 1e-9)


QUOTA = re.compile(r'^Server CPU quota: ([0-9.]+) of a CPU')


def server_quota(path):
    """The share of a CPU the servers of a results file were held to (bench/lib.sh's quota_line;
    1 without one)."""
    for line in open(path, encoding='utf-8'):
        m = QUOTA.match(line)
        if m:
            return min(1.0, float(m.group(1)))  # bench/lib.sh takes at most one CPU
    return 1.0


def bottleneck(scenario, data, quota=1.0):
    """Which side limited a run: the one busy (CPU) for at least 90 % of the wall time it may use
    (the server `quota` of it, under a CPU quota). The idle run has none: it only connects."""
    wall = data['wall_s']
    if scenario == 'idle' or not wall:
        return ''
    busy = [name for name, cpu, share in (('server', data['server_cpu_s'], quota),
                                          ('generator', data['loadgen_cpu_s'], 1.0))
            if cpu >= 0.9 * share * wall]
    return ' and '.join(busy) if busy else 'neither: round trips'


if __name__ == '__main__':
    main()
