#!/usr/bin/env python3
"""Turns a bench/cluster.sh results file into its tables (issue 14, "Performance"):

- engine: one node, engine redis against engine memory, medians over the rounds: deliveries/s
  (publishes/s for targeted), redis ÷ memory against the issue's targets (fan-out >= 0.8,
  targeted >= 0.6), the p50/p99 a publish adds going through Redis, and Redis's work per publish;
- cluster: three nodes on one Redis, one generator process per node: every process's deliveries
  together (deliveries/s over the span from the first publish to the last delivery anywhere), the
  latency quantiles of the merged histograms, lost/duplicates, both sides' CPU, each node's RSS
  per connection and Redis's load per publish; zena-realtime ÷ the better peer.

Usage: bench/summarize_cluster.py bench/results/<date>-<time>-cluster.md
Helpers for bench/cluster.sh: --redis-info (INFO text on stdin -> one JSON line) and
--redis-delta BEFORE AFTER (two such lines -> what happened between them, one JSON line)."""
import json
import re
import statistics
import sys

from summarize import fmt as number, json_lines

LINE = re.compile(r'^(engine|cluster) (\w+) (\w+) r(\d+) (\w+) (\{.*\})\s*$')
TARGETS = {'fanout_delivery_w8': 0.8, 'fanout_answer_w8': 0.8, 'targeted_answer': 0.6, 'targeted_delivery': 0.6}
PEERS = ('ws', 'sio')
NAMES = {'zena': 'zena-realtime', 'ws': 'ws + Redis pub/sub', 'sio': 'Socket.IO + redis-adapter'}


# --- Redis's counters -------------------------------------------------------------------------

def redis_info(text):
    """INFO's numbers: the flat fields, and commandstats as {command: {calls, usec}}."""
    out = {'commands': {}}
    for line in text.splitlines():
        if ':' not in line or line.startswith('#'):
            continue
        key, value = line.strip().split(':', 1)
        if key.startswith('cmdstat_'):
            fields = dict(kv.split('=') for kv in value.split(','))
            out['commands'][key[8:]] = {'calls': int(fields['calls']), 'usec': int(fields['usec'])}
            continue
        try:
            out[key] = float(value) if '.' in value else int(value)
        except ValueError:
            pass
    return out


def redis_delta(a, b):
    """What Redis did between two readings: CPU (user + system, main thread and others), commands,
    bytes in and out, memory, and the calls and time of each command that ran."""
    cpu = lambda r: r.get('used_cpu_user', 0) + r.get('used_cpu_sys', 0)
    commands = {}
    for name, after in b['commands'].items():
        before = a['commands'].get(name, {'calls': 0, 'usec': 0})
        calls = after['calls'] - before['calls']
        if calls:
            commands[name] = {'calls': calls, 'usec': after['usec'] - before['usec']}
    return {
        'cpu_s': round(cpu(b) - cpu(a), 3),
        'commands': b.get('total_commands_processed', 0) - a.get('total_commands_processed', 0),
        'net_in_bytes': b.get('total_net_input_bytes', 0) - a.get('total_net_input_bytes', 0),
        'net_out_bytes': b.get('total_net_output_bytes', 0) - a.get('total_net_output_bytes', 0),
        'used_memory_delta': b.get('used_memory', 0) - a.get('used_memory', 0),
        'used_memory': b.get('used_memory', 0),
        'pubsub_channels': b.get('pubsub_channels', 0),
        'pubsubshard_channels': b.get('pubsubshard_channels', 0),
        'clients': b.get('connected_clients', 0),
        'calls': commands,
    }


# --- the results file -------------------------------------------------------------------------

def load(path):
    """{(part, server, label): {round: {kind: data}}}, in the order the runs came."""
    runs = {}
    for part, server, label, rnd, kind, data in json_lines(path, LINE):
        runs.setdefault((part, server, label), {}).setdefault(int(rnd), {})[kind] = data
    return runs


def fmt(n):
    return '' if n is None else number(n)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ms(us):
    return None if us is None else us / 1000


def check(gens):
    bad = []
    for key in ('lost', 'duplicates', 'reorders', 'gaps', 'closed_early'):
        total = sum(g.get(key, 0) for g in gens)
        if total:
            bad.append(f'{key} {total}')
    if any(g.get('welcomed', 0) != g.get('connections', -1) for g in gens):
        bad.append('not every connection welcomed')
    if any(not g for g in gens):
        bad.append('a generator printed nothing')
    if any(g.get('cut_off') or g.get('cluster', {}).get('cut_off') for g in gens):
        bad.append('cut off one drain after the last publish')
    return ', '.join(bad) if bad else 'ok'


def quantile(buckets, q):
    """The q-quantile of merged [[upper µs, count], ...] histograms, as latency_histogram has it."""
    total = sum(c for _, c in buckets)
    if not total:
        return None
    rank, seen = int(q * total), 0
    for upper, count in sorted(buckets):
        seen += count
        if seen > rank:
            return upper
    return max(u for u, _ in buckets)


def merged(gens):
    """One run's generator processes as one: deliveries, span, latency quantiles, CPU."""
    hist = {}
    for g in gens:
        for upper, count in g.get('cluster', {}).get('latency_hist', []):
            hist[upper] = hist.get(upper, 0) + count
    buckets = list(hist.items())
    start = next((g['cluster']['t_start_ns'] for g in gens if g.get('cluster', {}).get('role') == 'publish'), None)
    last = max((g.get('cluster', {}).get('t_last_delivery_ns', 0) for g in gens), default=0)
    span = (last - start) / 1e9 if start and last > start else 0
    delivered = sum(g.get('delivered', 0) for g in gens)
    return {
        'delivered': delivered,
        'expected': sum(g.get('expected_deliveries', 0) for g in gens),
        'messages': next((g['messages'] for g in gens if g.get('cluster', {}).get('role') == 'publish'), 0),
        'connections': sum(g.get('connections', 0) for g in gens),
        'span_s': span,
        'deliveries_per_s': delivered / span if span else None,
        'p50': quantile(buckets, 0.5), 'p99': quantile(buckets, 0.99), 'p999': quantile(buckets, 0.999),
        'max': max(hist) if hist else None,
        'server_cpu_s': sum(g.get('server_cpu_s', 0) for g in gens),
        'loadgen_cpu_s': sum(g.get('loadgen_cpu_s', 0) for g in gens),
        'handshakes_per_s': sum(g.get('handshakes_per_s', 0) for g in gens),
        # the publisher's view of the machine, less what the other nodes and generators took
        # (and Redis's, taken off by the caller)
        'others_cpu_s': max(0.0, gens[0].get('others_cpu_s', 0) - sum(g.get('server_cpu_s', 0) for g in gens[1:])
                            - sum(g.get('loadgen_cpu_s', 0) for g in gens[1:])) if gens and gens[0] else 0,
        'check': check(gens),
    }


def side(cpu, wall, cores):
    return cpu / (wall * cores) if wall and cores else 0


def engine(runs):
    rows = [(label, by) for (part, server, label), by in runs.items() if part == 'engine' and server == 'memory']
    if not rows:
        return
    print('## One node: engine redis ÷ engine memory')
    print()
    print('Medians over the rounds (each run a fresh server, and a fresh Redis for engine redis, the '
          'engines alternated). Targeted: one connection per user, so deliveries/s = publishes/s. '
          'The open-loop rows are Poisson arrivals at a rate both engines hold: their latencies are '
          'what a publish adds going through Redis at the same load.')
    print()
    print('| shape | in flight | memory deliveries/s | redis deliveries/s | redis ÷ memory | target | '
          'memory p50 / p99 ms | redis p50 / p99 ms | Redis adds p50 / p99 ms | '
          'server CPU s memory / redis | Redis CPU s | Redis per publish: EVALSHA / SPUBLISH calls, CPU µs | checks |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    for label, mem_rounds in rows:
        red_rounds = runs.get(('engine', 'redis', label), {})
        mem = [r['gen0'] for r in mem_rounds.values() if r.get('gen0')]
        red = [r['gen0'] for r in red_rounds.values() if r.get('gen0')]
        rds = [r['redis'] for r in red_rounds.values() if r.get('redis')]
        if not mem or not red:
            continue
        open_loop = label.endswith('_open')

        def lat(d, q):
            if open_loop:
                return d['steps'][0]['latency_us'][q] if d.get('steps') else None
            return d['latency_us'][q]

        def rate(d):
            return d['steps'][0]['deliveries_per_s'] if open_loop and d.get('steps') else d['deliveries_per_s']

        m_rate, r_rate = median(rate(d) for d in mem), median(rate(d) for d in red)
        m50, m99 = median(lat(d, 'p50') for d in mem), median(lat(d, 'p99') for d in mem)
        r50, r99 = median(lat(d, 'p50') for d in red), median(lat(d, 'p99') for d in red)
        ratio = r_rate / m_rate if m_rate and r_rate else None
        target = TARGETS.get(label)
        verdict = '' if target is None or ratio is None else f'≥ {target}: {"met" if ratio >= target else "NOT met"}'
        publishes = median(d['messages'] for d in red) or 0
        calls = lambda name: median(x['calls'].get(name, {}).get('calls', 0) for x in rds)
        rcpu = median(x['cpu_s'] for x in rds)
        per = (f'{calls("evalsha") / publishes:.2f} / {calls("spublish") / publishes:.2f}, '
               f'{rcpu * 1e6 / publishes:.1f}' if publishes and rds else '')
        bad = [check([d]) for d in mem + red if check([d]) != 'ok']
        checks = 'ok' if not bad else '; '.join(bad)
        pair = lambda a, b, sign='': '' if a is None or b is None else f'{ms(a):{sign}.2f} / {ms(b):{sign}.2f}'
        added = pair(r50 - m50, r99 - m99, '+') if None not in (m50, m99, r50, r99) else ''
        print(f'| {label} | {red[0].get("in_flight", "")} | {fmt(m_rate)} | {fmt(r_rate)} | '
              f'{"" if ratio is None else f"{ratio:.2f}"} | {verdict} | {pair(m50, m99)} | '
              f'{pair(r50, r99)} | {added} | '
              f'{median(d["server_cpu_s"] for d in mem):.2f} / {median(d["server_cpu_s"] for d in red):.2f} | '
              f'{"" if rcpu is None else f"{rcpu:.2f}"} | {per} | {checks} |')
    print()
    print('Redis per publish: the top-level EVALSHA (the append script: seq, XADD, trim, SPUBLISH) '
          'and the SPUBLISH calls (those the script makes included, and the canaries\') per publish, '
          'and Redis\'s CPU per publish, all over the whole run: the connects included (each '
          'user\'s channel subscribed, and its position read with EVALSHA), so they overstate a '
          'fan-out\'s, whose publishes are few; the cluster part reads the publishing alone. Every '
          'command that ran, per run, is in the raw `redis` lines.')


def cluster(runs):
    rows = [((server, label), by) for (part, server, label), by in runs.items() if part == 'cluster']
    if not rows:
        return
    print()
    print('## Three nodes on one Redis')
    print()
    first = next(iter(rows))[1]
    g0 = next(iter(first.values())).get('gen0', {})
    print(f'The load: one publisher (the first generator process, on node 0) sends '
          f'`/api/broadcast-all` to its node, {g0.get("in_flight", "?")}; the other two processes only '
          'receive. Every process checks every delivery (once, in order); deliveries/s is every '
          'process\'s deliveries over the span from the first publish to the last delivery '
          'anywhere; the latency quantiles come from the processes\' histograms merged (within 0.8 %). '
          'Medians over the rounds.')
    print()
    print('| server | nodes × connections | messages | deliveries/s | p50 / p99 / p99.9 ms | '
          'CPU s: nodes / Redis / generators / span | server side busy, generator side busy | '
          'RSS KiB per connection (per node) | Redis per publish: commands, in / out bytes, CPU µs | checks |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    best = {}
    for (server, label), by in rows:
        results = []
        for rnd, kinds in sorted(by.items()):
            gens = [kinds.get(f'gen{i}', {}) for i in range(3)]
            m = merged(gens)
            run = kinds.get('run', {})
            red = kinds.get('redis', {})
            m['redis_cpu_s'] = red.get('cpu_s', 0)
            m['others_cpu_s'] = max(0.0, m['others_cpu_s'] - m['redis_cpu_s'])
            m['redis'] = red
            m['run'] = run
            n = run.get('connections_per_node', 0)
            m['rss_per_conn'] = [(b - a) / n for a, b in zip(run.get('rss_before_kib', []),
                                                               run.get('rss_ready_kib', []))] if n else []
            results.append(m)
        rate = median(r['deliveries_per_s'] for r in results)
        p50, p99, p999 = (median(r[q] for r in results) for q in ('p50', 'p99', 'p999'))
        best[server] = (rate, p99)
        span = median(r['span_s'] for r in results)
        cpu = [median(r[k] for r in results) for k in ('server_cpu_s', 'redis_cpu_s', 'loadgen_cpu_s')]
        cores_s = results[0]['run'].get('server_cores', 1)
        cores_g = results[0]['run'].get('loadgen_cores', 1)
        busy = (f'{side(cpu[0] + cpu[1], span, cores_s):.0%}, {side(cpu[2], span, cores_g):.0%}'
                if span else '')
        rss = median(sum(r['rss_per_conn']) / len(r['rss_per_conn']) for r in results if r['rss_per_conn'])
        rss_nodes = ' / '.join(f'{x:.2f}' for x in results[0]['rss_per_conn'])
        msgs = median(r['messages'] for r in results) or 0
        per = ''
        if msgs and results[0]['redis']:
            red = [r['redis'] for r in results]
            per = (f'{median(x["commands"] for x in red) / msgs:.2f}, '
                   f'{fmt(median(x["net_in_bytes"] for x in red) / msgs)} / '
                   f'{fmt(median(x["net_out_bytes"] for x in red) / msgs)}, '
                   f'{median(x["cpu_s"] for x in red) * 1e6 / msgs:.0f}')
        checks = '; '.join(f'r{i + 1}: {r["check"]}' for i, r in enumerate(results))
        disturbed = [f'r{i + 1}: others took {r["others_cpu_s"]:.2f} s' for i, r in enumerate(results)
                     if r['span_s'] and r['others_cpu_s'] > 0.1 * r['span_s']]
        if disturbed:
            checks += '; disturbed: ' + ', '.join(disturbed)
        lat = '' if p50 is None else f'{ms(p50):.1f} / {ms(p99):.1f} / {ms(p999):.1f}'
        print(f'| {NAMES.get(server, server)} | 3 × {results[0]["connections"] // 3:,} | {int(msgs):,} | '
              f'{fmt(rate)} | {lat} | {cpu[0]:.2f} / {cpu[1]:.2f} / {cpu[2]:.2f} / {fmt(span)} | {busy} | '
              f'{"" if rss is None else f"{rss:.2f}"} ({rss_nodes}) | {per} | {checks} |')
    peers = [(best[p][0], p) for p in PEERS if p in best and best[p][0]]
    if 'zena' in best and best['zena'][0] and peers:
        rate, peer = max(peers)
        ours, ours_p99 = best['zena']
        p99 = best[peer][1]
        print()
        print(f'zena-realtime ÷ the better peer ({NAMES[peer]}): deliveries/s **{ours / rate:.2f}** '
              f'(target ≥ 5: {"met" if ours / rate >= 5 else "NOT met"}); p99 '
              f'**{ours_p99 / p99:.2f}** (target ≤ 1, "no worse": {"met" if ours_p99 <= p99 else "NOT met"}).'
              if p99 and ours_p99 else '')
    print()
    print('Server side busy: (nodes + Redis CPU) ÷ (span × the server side\'s cores); a side at 90 % '
          'or more was the bottleneck. RSS per connection: each node\'s RSS once all its connections '
          'were in, less before the connects, per connection. Redis per publish: INFO deltas over '
          'the publishing alone (read while the publisher waited for the go), divided by the '
          'publishes; the connect phase\'s deltas (subscriptions) are the raw `redis_connect` lines.')


def main():
    if sys.argv[1] == '--redis-info':
        print(json.dumps(redis_info(sys.stdin.read())))
        return
    if sys.argv[1] == '--redis-delta':
        print(json.dumps(redis_delta(json.loads(sys.argv[2]), json.loads(sys.argv[3]))))
        return
    runs = load(sys.argv[1])
    engine(runs)
    cluster(runs)


if __name__ == '__main__':
    main()
