#!/usr/bin/env python3
"""Where a publication's time goes on its way through Redis (docs/benchmarks.md, "Three nodes
on Redis: where the time goes", issue 16 item 4).

Reads a loopback capture of a `cerebrum bench fanout` run against several `cerebrum serve
--redis` nodes, taken with the Redis port and the client-to-node direction only (the nodes'
frames to their subscribers are the bulk of the traffic; capturing them perturbs the run):

    dumpcap -q -B 500 -i lo -w cap.pcapng -f "tcp port REDIS or ((tcp dst port N1 or \
        tcp dst port N2 or tcp dst port N3) and tcp[((tcp[12]&0xf0)>>2):1] != 0)"
    tshark -r cap.pcapng -T fields -e frame.time_epoch -e tcp.srcport -e tcp.dstport \
        -e tcp.payload > fields.tsv
    python3 docs/tools/trace_publication.py REDIS N1,N2,N3 < fields.tsv

For every publication (they are told apart by their order on the publisher's connection, on
the node's append connection and in Redis's answers, and by the offset in what Redis pushes),
it times: the publisher's frame reaching its node -> the node's append (EVALSHA) to Redis ->
Redis's answer, and Redis's push of the publication to each node. What comes after the push
(the node's fan-out to its subscribers, their sockets, the load generator reading) is the
rest of the end-to-end latency that `cerebrum bench` reports.
"""
import collections
import re
import sys


def frames_from_client(payloads):
    """The text frames a client sent, in order, as (time, unmasked payload)."""
    buf = b''
    for t, data in payloads:
        if data.startswith(b'GET '):  # the upgrade request
            continue
        buf += data
        while len(buf) >= 2:
            length, head = buf[1] & 0x7f, 2
            if length == 126:
                if len(buf) < 4:
                    break
                length, head = int.from_bytes(buf[2:4], 'big'), 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length, head = int.from_bytes(buf[2:10], 'big'), 10
            head += 4  # the mask
            if len(buf) < head + length:
                break
            mask = buf[head - 4:head]
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[head:head + length]))
            if buf[0] & 0x0f == 1:
                yield t, payload
            buf = buf[head + length:]


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main():
    redis = int(sys.argv[1])
    nodes = {int(p) for p in sys.argv[2].split(',')}
    rows = []
    for line in sys.stdin:
        fields = line.rstrip('\n').split('\t')
        if len(fields) < 4 or not fields[3]:
            continue
        rows.append((float(fields[0]), int(fields[1]), int(fields[2]),
                     bytes.fromhex(fields[3].replace(':', ''))))
    sent = collections.Counter()
    for _, src, dst, data in rows:
        if dst in nodes:
            sent[(src, dst)] += len(data)
    publisher = sent.most_common(1)[0][0]
    published = [t for t, payload in frames_from_client(
        (t, d) for t, s, dst, d in rows if (s, dst) == publisher) if b'bench.msg' in payload]
    appends = collections.Counter()
    for _, src, dst, data in rows:
        if dst == redis:
            appends[src] += data.count(b'bench.msg')
    append_conn = appends.most_common(1)[0][0]
    appended, answered = [], []
    pushed = collections.defaultdict(dict)
    for t, src, dst, data in rows:
        if dst == redis and src == append_conn:
            appended += [t] * data.count(b'bench.msg')
        elif src == redis and dst == append_conn:
            answered += [(int(m.group(1)), t) for m in re.finditer(rb'\*2\r\n:(\d+)\r\n\$16\r\n', data)]
        elif src == redis:
            for m in re.finditer(rb'"offset":(\d+)', data):
                pushed[int(m.group(1))].setdefault(dst, t)
    stages = collections.defaultdict(list)
    for k in range(min(len(published), len(appended), len(answered))):
        offset, t_answer = answered[k]
        t_frame, t_append = published[k], appended[k]
        stages['1 publisher frame -> append sent to Redis'].append(t_append - t_frame)
        stages['2 append sent -> Redis answered'].append(t_answer - t_append)
        pushes = sorted(pushed.get(offset, {}).values())
        if len(pushes) == len(nodes):
            stages['3 append sent -> pushed to the first node'].append(pushes[0] - t_append)
            stages['4 pushed to the first node -> to the last'].append(pushes[-1] - pushes[0])
            stages['5 publisher frame -> pushed to every node'].append(pushes[-1] - t_frame)
    print(f"publications traced: {len(stages['2 append sent -> Redis answered'])}")
    for name in sorted(stages):
        ms = [v * 1000 for v in stages[name]]
        print(f"{name:44s} p50 {percentile(ms, 50):7.3f}  p90 {percentile(ms, 90):7.3f}  "
              f"p99 {percentile(ms, 99):7.3f}  max {max(ms):7.3f} ms")


if __name__ == '__main__':
    main()
