#!/usr/bin/env python3
"""Turns a bench/channels.sh results file into the tables of bench/results/<date>-channels.md:
the fan-out on one channel against the broadcast-all fan-out and against itself with history
off (run by run, as alternated, and the medians), the reconnect storm's resume rate against the
plain connect rate, and the history's memory per stored event.
Usage: bench/summarize_channels.py bench/results/<date>-<time>-channels.md"""
import re
import statistics
import sys

from summarize import bottleneck, disturbed as marked, json_lines, server_quota

LINE = re.compile(r'^zena (\w+) busy=(\d+) (\{.*\})\s*$')
# The share of a CPU the server was held to (server_quota), set by main().
quota = 1.0


def disturbed(d, wall_key='wall_s'):
    """summarize.py's rule, under this file's CPU quota."""
    return marked(d, wall_key, quota)


def load(path):
    runs = {}
    for label, busy, data in json_lines(path, LINE):
        data['busy'] = int(busy)
        runs.setdefault(label, []).append(data)
    return runs


def fmt(n):
    return f'{n:,.0f}' if abs(n) >= 100 else f'{n:,.2f}'


def side(cpu_server, cpu_gen, wall):
    """summarize.py's bottleneck rule, under this file's CPU quota."""
    return bottleneck('run', {'wall_s': wall, 'server_cpu_s': cpu_server, 'loadgen_cpu_s': cpu_gen}, quota)


def fanout_tables(runs, suffix, title):
    base, chan, off = runs.get('fanout' + suffix, []), runs.get('channel' + suffix, []), runs.get(
        'channel_nohist' + suffix, [])
    if not base:
        return
    print(f'### {title}')
    print()
    print('| round | fanout (broadcast-all) | channel, history on | channel, history off | on ÷ fanout | on ÷ off |'
          ' p50 / p99 ms fanout | on | off | disturbed |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    r1, r2, quiet = [], [], []
    for i in range(min(len(base), len(chan), len(off))):
        b, c, o = base[i], chan[i], off[i]
        r1.append(c['deliveries_per_s'] / b['deliveries_per_s'])
        r2.append(c['deliveries_per_s'] / o['deliveries_per_s'])
        hit = [n for n, d in (('fanout', b), ('on', c), ('off', o)) if disturbed(d)]
        if not hit:
            quiet.append(i)
        lat = lambda d: f'{d["latency_us"]["p50"] / 1000:.1f} / {d["latency_us"]["p99"] / 1000:.1f}'
        print(f'| {i + 1} | {fmt(b["deliveries_per_s"])} | {fmt(c["deliveries_per_s"])} | '
              f'{fmt(o["deliveries_per_s"])} | {r1[-1]:.2f} | {r2[-1]:.2f} | {lat(b)} | {lat(c)} | {lat(o)} | '
              f'{", ".join(hit)} |')
    med = lambda rows: statistics.median(d['deliveries_per_s'] for d in rows)
    if r1:
        print(f'| median, all | {fmt(med(base))} | {fmt(med(chan))} | {fmt(med(off))} | '
              f'{statistics.median(r1):.2f} | {statistics.median(r2):.2f} | | | | |')
    if quiet:
        pick = lambda rows: [rows[i] for i in quiet]
        print(f'| median, undisturbed rounds ({len(quiet)}) | {fmt(med(pick(base)))} | {fmt(med(pick(chan)))} | '
              f'{fmt(med(pick(off)))} | {statistics.median(r1[i] for i in quiet):.2f} | '
              f'{statistics.median(r2[i] for i in quiet):.2f} | | | | |')
    # The server's CPU per delivery: its cost, whatever the pace of the round trips.
    ns = lambda rows: statistics.median(d['server_cpu_s'] / max(d['delivered'], 1) * 1e9 for d in rows)
    rows = [(base, chan, off)] if not quiet else [(base, chan, off), tuple([r[i] for i in quiet] for r in (base, chan, off))]
    for k, (b, c, o) in enumerate(rows):
        if not b or not c or not o:
            continue
        which = 'all' if k == 0 else f'undisturbed rounds ({len(quiet)})'
        print(f'| server CPU ns per delivery, median, {which} | {ns(b):.0f} | {ns(c):.0f} | {ns(o):.0f} | '
              f'{ns(b) / ns(c):.2f} (fanout ÷ on) | {ns(o) / ns(c):.2f} (off ÷ on) | | | | |')
    print()
    print('| run | server CPU s | server CPU ns per delivery | generator CPU s | others CPU s | wall s | bottleneck |'
          ' busy before % | lost | dup | reord | gaps | seq errors | stored |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    for label in ('fanout', 'channel', 'channel_nohist'):
        for i, d in enumerate(runs.get(label + suffix, [])):
            print(f'| {label}{suffix} {i + 1} | {d["server_cpu_s"]} | '
                  f'{d["server_cpu_s"] / max(d["delivered"], 1) * 1e9:.0f} | {d["loadgen_cpu_s"]} | '
                  f'{d.get("others_cpu_s", "")} | {d["wall_s"]} | '
                  f'{side(d["server_cpu_s"], d["loadgen_cpu_s"], d["wall_s"])} | {d["busy"]} | {d["lost"]} | '
                  f'{d["duplicates"]} | {d["reorders"]} | {d["gaps"]} | {d.get("channel_seq_errors", "")} | '
                  f'{d.get("stored", "")} |')
    print()


def framesize_table(runs):
    base, wide, chan = runs.get('fs_fanout', []), runs.get('fs_fanout_wide', []), runs.get('fs_channel', [])
    if not base:
        return
    print('### Frame size: broadcast-all with frames as long as the channel\'s')
    print()
    print('| round | fanout | fanout, wide frames | channel, history on | wide ÷ fanout | channel ÷ fanout |'
          ' channel ÷ wide | frame B (fanout / wide / channel) | server ns per delivery | disturbed |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    r1, r2, r3 = [], [], []
    for i in range(min(len(base), len(wide), len(chan))):
        b, w, c = base[i], wide[i], chan[i]
        r1.append(w['deliveries_per_s'] / b['deliveries_per_s'])
        r2.append(c['deliveries_per_s'] / b['deliveries_per_s'])
        r3.append(c['deliveries_per_s'] / w['deliveries_per_s'])
        ns = ' / '.join(f'{d["server_cpu_s"] / max(d["delivered"], 1) * 1e9:.0f}' for d in (b, w, c))
        fb = ' / '.join(f'{d.get("frame_bytes_avg", 0):.0f}' for d in (b, w, c))
        hit = [n for n, d in (('fanout', b), ('wide', w), ('channel', c)) if disturbed(d)]
        print(f'| {i + 1} | {fmt(b["deliveries_per_s"])} | {fmt(w["deliveries_per_s"])} | {fmt(c["deliveries_per_s"])} | '
              f'{r1[-1]:.2f} | {r2[-1]:.2f} | {r3[-1]:.2f} | {fb} | {ns} | {", ".join(hit)} |')
    if r1:
        med = lambda rows: statistics.median(d['deliveries_per_s'] for d in rows)
        ns = lambda rows: statistics.median(d['server_cpu_s'] / max(d['delivered'], 1) * 1e9 for d in rows)
        print(f'| median | {fmt(med(base))} | {fmt(med(wide))} | {fmt(med(chan))} | {statistics.median(r1):.2f} | '
              f'{statistics.median(r2):.2f} | {statistics.median(r3):.2f} | | '
              f'{ns(base):.0f} / {ns(wide):.0f} / {ns(chan):.0f} | |')
    print()


def resume_tables(runs):
    rows = runs.get('resume', [])
    if not rows:
        return
    print('### Reconnect storm')
    print()
    print('| run | phase | connections/s | s to last completion | s to last welcome | replayed | server CPU s |'
          ' generator CPU s | others CPU s | bottleneck | ok |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    ratios = []
    for i, d in enumerate(rows):
        for p in d['phases']:
            print(f'| {i + 1} | {p["kind"]} | {fmt(p["per_s"])} | {p["seconds"]:.3f} | {p["welcome_seconds"]:.3f} | '
                  f'{p["replayed"]} | {p["server_cpu_s"]} | {p["loadgen_cpu_s"]} | {p.get("others_cpu_s", "")} | '
                  f'{side(p["server_cpu_s"], p["loadgen_cpu_s"], p["seconds"])} | {p["ok"]} |')
        ratios.append(d['resume_over_plain'])
    print()
    print('| run | plain median /s | resume median /s | resume ÷ plain | events published | delivered live | clean |')
    print('|---|---|---|---|---|---|---|')
    for i, d in enumerate(rows):
        print(f'| {i + 1} | {fmt(d["plain_per_s_median"])} | {fmt(d["resume_per_s_median"])} | '
              f'{d["resume_over_plain"]:.2f} | {d["published"]} | {d["delivered_live"]} | {d["clean"]} |')
    all_plain = [p['per_s'] for d in rows for p in d['phases'] if p['kind'] == 'plain']
    all_resume = [p['per_s'] for d in rows for p in d['phases'] if p['kind'] == 'resume']
    print(f'| all phases | {fmt(statistics.median(all_plain))} | {fmt(statistics.median(all_resume))} | '
          f'{statistics.median(all_resume) / statistics.median(all_plain):.2f} | | | |')
    q_plain = [p['per_s'] for d in rows for p in d['phases'] if p['kind'] == 'plain' and not disturbed(p, 'seconds')]
    q_resume = [p['per_s'] for d in rows for p in d['phases'] if p['kind'] == 'resume' and not disturbed(p, 'seconds')]
    if q_plain and q_resume:
        print(f'| undisturbed phases ({len(q_plain)} plain, {len(q_resume)} resume) | {fmt(statistics.median(q_plain))} | '
              f'{fmt(statistics.median(q_resume))} | {statistics.median(q_resume) / statistics.median(q_plain):.2f} | | | |')
    # Each resume against the plain reconnect just before it (the alternated pairs).
    pairs, q_pairs = [], []
    for d in rows:
        phases = d['phases']
        for a, b in zip(phases, phases[1:]):
            if a['kind'] == 'plain' and b['kind'] == 'resume':
                pairs.append(b['per_s'] / a['per_s'])
                if not disturbed(a, 'seconds') and not disturbed(b, 'seconds'):
                    q_pairs.append(pairs[-1])
    if pairs:
        print(f'| pairs (resume ÷ the plain before it), all {len(pairs)} | | | '
              f'median {statistics.median(pairs):.2f}, min {min(pairs):.2f}, max {max(pairs):.2f} | | | |')
    if q_pairs:
        print(f'| pairs, undisturbed {len(q_pairs)} | | | median {statistics.median(q_pairs):.2f}, '
              f'min {min(q_pairs):.2f}, max {max(q_pairs):.2f} | | | |')
    # CPU per connection, each side: what a resume costs beyond a plain connect, whatever the pace.
    for side, key in (('server', 'server_cpu_s'), ('generator', 'loadgen_cpu_s')):
        per = {k: statistics.median(p[key] / p['completed'] * 1e6 for d in rows for p in d['phases'] if p['kind'] == k)
               for k in ('plain', 'resume')}
        print(f'| {side} CPU µs per connection (median) | {per["plain"]:.1f} | {per["resume"]:.1f} | '
              f'{per["plain"] / per["resume"]:.2f} (plain ÷ resume) | | | |')
    print()


def store_tables(runs):
    rows = runs.get('store', [])
    if not rows:
        return
    print('### History memory (server RSS)')
    print()
    print('| run | events | channels | payload B | frame B | RSS before KiB | RSS after KiB | bytes per event |'
          ' evicted | events/s |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for i, d in enumerate(rows):
        print(f'| {i + 1} | {d["messages"]} | {d["channels"]} | {d["payload_bytes_avg"]:.0f} | '
              f'{d["frame_bytes_avg"]:.0f} | {d["rss_before_kib"]} | {d["rss_after_kib"]} | '
              f'{d["rss_bytes_per_event"]:.0f} | {d["evicted"]} | {fmt(d["events_per_s"])} |')
    print()


def main():
    global quota
    runs = load(sys.argv[1])
    quota = server_quota(sys.argv[1])
    fanout_tables(runs, '', 'Fan-out to one channel, 8 in flight (answer-gated)')
    fanout_tables(runs, '_rate', 'Fan-out to one channel, paced at 40 messages/s')
    framesize_table(runs)
    resume_tables(runs)
    store_tables(runs)


if __name__ == '__main__':
    main()
