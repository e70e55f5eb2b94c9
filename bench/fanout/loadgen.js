'use strict';
// Fan-out load generator: N WebSocket clients in rooms, one sender per room
// publishing 100-byte payloads at a target rate; every client records the
// delivery latency of each payload from the send time written inside it
// (same process, same clock). Reads the server's CPU time and RSS from
// /proc/<pid> at the edges of each measured window.
//
// Every run is bounded: a fixed number of connections, of steps, of seconds
// per step, and a hard time limit after which the process exits by itself.
//
// Wire formats (--kind):
//   raw    the Go hub and the bare aiohttp server: ws://HOST/ws?room=R000,
//          the payload itself is the text frame, both ways.
//   sio    socket.io 4 spoken directly on its engine.io WebSocket transport
//          (EIO=4, the same frames socket.io-client sends over WebSocket):
//          "40" connect, 421["join",room] with ack, 42["m",payload].
//   gortc  gortc's protocol: ws://HOST/api/v1/ws?access_token=…, wait for
//          {"type":"ready"}, send {"type":"message.send",group_id,body,client_id},
//          receive {"type":"message.created","message":{…,"body":payload}}.
//
// Payload (exactly 100 bytes of ASCII): "@@R000|<16-digit µs epoch>|xxxx…".
//
// Output: one JSON object per line on stdout (events, then {"event":"result"}).
// Progress in words on stderr.

const fs = require('node:fs');
const { performance } = require('node:perf_hooks');
const WebSocket = require('ws');

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const defaults = {
    kind: 'raw',
    url: '',
    rooms: 1,
    'per-room': 1000,
    setup: '',
    // Comma lists: several instances of one server. Connections go to the
    // URLs in turn; CPU and RSS are summed over the pids.
    pid: '',
    mode: 'fanout',
    rates: '',
    search: 0,
    factor: 1.6,
    resolution: 0.3,
    'max-rate': 5000,
    'max-probes': 9,
    probe: 2.5,
    'first-probe': 0,
    confirm: 10,
    measure: 10,
    fixed: '',
    warmup: 0.5,
    'confirm-warmup': 1,
    'p99-ms': 100,
    'probe-margin': 0.7,
    'connect-concurrency': 100,
    'settle-quiet-ms': 1000,
    'settle-max': 120,
    'time-limit': 300,
    'quiet-max': 20,
    // Cores others may use during a step before it counts as disturbed.
    disturbed: 0.15,
    'clk-tck': 100,
  };
  const options = { ...defaults };
  for (let i = 2; i < argv.length; i += 1) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const key = arg.slice(2);
    if (!(key in defaults)) throw new Error(`unknown option --${key}`);
    const value = argv[i + 1];
    i += 1;
    options[key] = typeof defaults[key] === 'number' ? Number(value) : value;
  }
  if (!['raw', 'sio', 'gortc'].includes(options.kind)) throw new Error('--kind raw|sio|gortc');
  if (!options.url) throw new Error('--url is required');
  options.urls = options.url.split(',').filter(Boolean);
  options.pids = String(options.pid).split(',').filter(Boolean).map(Number);
  return options;
}

const options = parseArgs(process.argv);
const ROOMS = options.rooms;
const PER_ROOM = options['per-room'];
const PAYLOAD_BYTES = 100;
const LAT_BUCKET_US = 10;
const LAT_BUCKETS = 1_000_000; // 10 s in 10 µs buckets; the last one holds everything later
const MARK = Buffer.from('@@R');
const ACK = Buffer.from('"message.ack"');
const READY = Buffer.from('"ready"');

const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const say = (text) => process.stderr.write(`[loadgen ${options.kind}] ${text}\n`);

const hardStop = setTimeout(() => {
  emit({ event: 'error', error: `time limit of ${options['time-limit']} s reached` });
  process.exit(3);
}, options['time-limit'] * 1000);

// ---------------------------------------------------------------- clocks and /proc

const timeOriginUs = performance.timeOrigin * 1000;
const nowUs = () => timeOriginUs + performance.now() * 1000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function serverCpuSeconds() {
  if (!options.pids.length) return null;
  try {
    let ticks = 0;
    for (const pid of options.pids) {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[0] is the state (field 3); utime and stime are fields 14 and 15.
      ticks += Number(fields[11]) + Number(fields[12]);
    }
    return ticks / options['clk-tck'];
  } catch {
    return null;
  }
}

// Busy core-seconds of the whole machine (all cores), from /proc/stat.
function machineBusySeconds() {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return (user + nice + system + irq + softirq + steal) / options['clk-tck'];
  } catch {
    return null;
  }
}

function serverRssKiB() {
  if (!options.pids.length) return null;
  try {
    let kib = 0;
    for (const pid of options.pids) {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const match = /VmRSS:\s+(\d+)/.exec(status);
      if (!match) return null;
      kib += Number(match[1]);
    }
    return kib;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- measurement state

const histogram = new Uint32Array(LAT_BUCKETS + 1);
const state = {
  windowStart: Infinity, // µs; payloads sent in [windowStart, windowEnd) are measured
  windowEnd: -Infinity,
  windowReceived: 0,
  otherPayloads: 0, // payloads from outside the window (warm-up, earlier steps)
  receivedTotal: 0, // every payload delivery, whenever it was sent
  framesTotal: 0,
  lastFrameMs: 0,
  acks: 0,
  errors: 0,
  errorCodes: {},
  closed: 0,
  closeCodes: {},
  stopping: false,
};

function parseTimestamp(buffer, at) {
  let value = 0;
  for (let i = at; i < at + 16; i += 1) value = value * 10 + (buffer[i] - 48);
  return value;
}

// Where the payload starts in a frame of each wire format, when it is the
// only one ("@@" right there); otherwise it is searched for.
const PAYLOAD_AT = { raw: 0, sio: 8, gortc: -1 }[options.kind];

function findPayload(data) {
  if (PAYLOAD_AT >= 0 && data[PAYLOAD_AT] === 64 && data[PAYLOAD_AT + 1] === 64) return PAYLOAD_AT;
  return data.indexOf(MARK);
}

function onFrame(connection, data) {
  state.framesTotal += 1;
  const nowMs = performance.now();
  state.lastFrameMs = nowMs;
  let index = findPayload(data);
  if (index < 0) {
    connection.onControl(data);
    return;
  }
  if (connection.sender && options.kind === 'gortc' && data.indexOf(ACK) >= 0) {
    state.acks += 1;
    return;
  }
  const now = timeOriginUs + nowMs * 1000;
  while (index >= 0) {
    const sent = parseTimestamp(data, index + 7);
    state.receivedTotal += 1;
    if (sent >= state.windowStart && sent < state.windowEnd) {
      const bucket = Math.floor((now - sent) / LAT_BUCKET_US);
      histogram[bucket < LAT_BUCKETS ? (bucket < 0 ? 0 : bucket) : LAT_BUCKETS] += 1;
      state.windowReceived += 1;
    } else {
      state.otherPayloads += 1;
    }
    // More than one payload only in the Go hub's -coalesce frames.
    index = data.length >= index + 2 * PAYLOAD_BYTES ? data.indexOf(MARK, index + PAYLOAD_BYTES) : -1;
  }
}

function countError(code) {
  state.errors += 1;
  state.errorCodes[code] = (state.errorCodes[code] || 0) + 1;
  if (state.errors <= 3) say(`server error: ${code}`);
}

// ---------------------------------------------------------------- payloads and wire formats

const roomName = (room) => `R${String(room).padStart(3, '0')}`;
const padding = 'x'.repeat(PAYLOAD_BYTES);

function payload(room) {
  const head = `@@${roomName(room)}|${Math.floor(nowUs())}|`;
  return head + padding.slice(head.length);
}

let clientSeq = 0;
// gortc keeps each sender's client_ids (a resend returns the stored message),
// so every run of this generator needs ids of its own.
const clientPrefix = `b${process.pid}-${Date.now().toString(36)}-`;

class Connection {
  constructor(room, index, groups) {
    this.room = room;
    this.sender = index === 0;
    this.ready = false;
    this.groupId = groups ? groups[room].id : null;
    // Member i of room r on instance (r + i) mod N: each room's sender on its own.
    const base = options.urls[(room + index) % options.urls.length];
    if (options.kind === 'raw') {
      this.url = `${base}/ws?room=${roomName(room)}`;
    } else if (options.kind === 'sio') {
      this.url = `${base}/socket.io/?EIO=4&transport=websocket`;
    } else {
      const token = groups[room].tokens[index];
      this.url = `${base}/api/v1/ws?access_token=${encodeURIComponent(token)}`;
    }
  }

  open() {
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      this.resolveReady = () => done();
      const timer = setTimeout(() => done(new Error('not ready after 30 s')), 30_000);
      const ws = new WebSocket(this.url, {
        perMessageDeflate: false,
        skipUTF8Validation: true,
        handshakeTimeout: 30_000,
      });
      this.ws = ws;
      ws.on('open', () => {
        if (options.kind === 'raw') this.markReady();
      });
      ws.on('message', (data) => onFrame(this, data));
      ws.on('error', (error) => done(error));
      ws.on('close', (code) => {
        if (!state.stopping) {
          state.closed += 1;
          state.closeCodes[code] = (state.closeCodes[code] || 0) + 1;
        }
        done(new Error(`closed with ${code} before ready`));
      });
    });
  }

  markReady() {
    this.ready = true;
    this.resolveReady();
  }

  // Frames that carry no payload: handshakes, pings, presence, errors.
  onControl(data) {
    if (options.kind === 'sio') {
      const text = data.toString();
      if (text === '2') this.ws.send('3'); // engine.io ping → pong
      else if (text.startsWith('0{')) this.ws.send('40'); // open → connect to "/"
      else if (text.startsWith('40')) this.ws.send(`421["join","${roomName(this.room)}"]`);
      else if (text.startsWith('431')) this.markReady(); // join acknowledged
      else if (text.startsWith('44')) countError(`connect_error ${text.slice(2, 80)}`);
    } else if (options.kind === 'gortc') {
      if (!this.ready && data.indexOf(READY) >= 0) {
        this.markReady();
        return;
      }
      if (this.sender && data.indexOf('"error"') >= 0) {
        try {
          const frame = JSON.parse(data.toString());
          if (frame.type === 'error') countError(frame.code);
        } catch {
          countError('unparsable');
        }
      }
    }
  }

  send(room) {
    const body = payload(room);
    if (options.kind === 'raw') this.ws.send(body);
    else if (options.kind === 'sio') this.ws.send(`42["m","${body}"]`);
    else {
      clientSeq += 1;
      this.ws.send(
        JSON.stringify({ type: 'message.send', group_id: this.groupId, body, client_id: `${clientPrefix}${clientSeq}` }),
      );
    }
  }
}

// ---------------------------------------------------------------- connecting

async function connectAll(groups) {
  const connections = [];
  for (let room = 0; room < ROOMS; room += 1) {
    for (let index = 0; index < PER_ROOM; index += 1) connections.push(new Connection(room, index, groups));
  }
  const started = performance.now();
  let next = 0;
  let failures = 0;
  const worker = async () => {
    while (next < connections.length) {
      const connection = connections[next];
      next += 1;
      try {
        await connection.open();
      } catch (error) {
        failures += 1;
        if (failures <= 3) say(`connection failed: ${error.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: options['connect-concurrency'] }, worker));
  const seconds = (performance.now() - started) / 1000;
  const ready = connections.filter((c) => c.ready).length;
  say(`${ready}/${connections.length} connections ready in ${seconds.toFixed(1)} s`);
  if (failures) throw new Error(`${failures} connections failed`);
  return { connections, seconds };
}

// Waits until no frame has arrived for settle-quiet-ms (joins and presence
// events fanned out by the server during connection), bounded by settle-max.
async function settle() {
  const started = performance.now();
  const quiet = options['settle-quiet-ms'];
  while (performance.now() - started < options['settle-max'] * 1000) {
    if (performance.now() - state.lastFrameMs >= quiet) break;
    await sleep(100);
  }
  return (performance.now() - started) / 1000;
}

// ---------------------------------------------------------------- one step at one rate

function percentile(expected, fraction) {
  const target = Math.ceil(expected * fraction);
  if (target <= 0) return null;
  let cumulative = 0;
  for (let bucket = 0; bucket <= LAT_BUCKETS; bucket += 1) {
    cumulative += histogram[bucket];
    if (cumulative >= target) {
      if (bucket === LAT_BUCKETS) return null; // later than 10 s
      return ((bucket + 0.5) * LAT_BUCKET_US) / 1000; // ms
    }
  }
  return null; // not delivered: counts as infinitely late
}

async function runStep(senders, rate, measureSeconds, label, warmupSeconds = options.warmup) {
  histogram.fill(0);
  state.windowReceived = 0;
  state.otherPayloads = 0;
  const errorsBefore = state.errors;
  const closedBefore = state.closed;
  const warmupUs = warmupSeconds * 1e6;
  const startUs = nowUs();
  state.windowStart = startUs + warmupUs;
  state.windowEnd = state.windowStart + measureSeconds * 1e6;
  const sent = new Array(senders.length).fill(0);
  let windowSent = 0;

  // Paced sending: every millisecond, each sender catches up to rate × elapsed.
  // The senders' schedules are staggered evenly (sender i runs i/n of a
  // period ahead), so rooms do not all publish at the same instant.
  const sendEndUs = state.windowEnd;
  const ticker = setInterval(() => {
    const now = nowUs();
    if (now >= sendEndUs) return;
    const periods = ((now - startUs) / 1e6) * rate;
    for (let i = 0; i < senders.length; i += 1) {
      const connection = senders[i];
      if (connection.ws.readyState !== WebSocket.OPEN) continue;
      const due = Math.floor(periods + i / senders.length);
      let missing = Math.min(due - sent[i], 1000);
      while (missing > 0) {
        const inWindow = nowUs() >= state.windowStart;
        connection.send(connection.room);
        sent[i] += 1;
        if (inWindow) windowSent += 1;
        missing -= 1;
      }
    }
  }, 1);

  await sleep(Math.max(0, (state.windowStart - nowUs()) / 1000));
  const cpu0 = serverCpuSeconds();
  const busy0 = machineBusySeconds();
  const gen0 = process.cpuUsage();
  const t0 = nowUs();
  const received0 = state.receivedTotal;
  await sleep(Math.max(0, (state.windowEnd - nowUs()) / 1000));
  const cpu1 = serverCpuSeconds();
  const busy1 = machineBusySeconds();
  const gen1 = process.cpuUsage(gen0);
  const t1 = nowUs();
  const receivedInWindow = state.receivedTotal - received0;
  clearInterval(ticker);

  // Drain: the window's deliveries, for at most 3 s; then quiet, for at most 15 s.
  const expected = windowSent * PER_ROOM;
  const drainStart = performance.now();
  while (state.windowReceived < expected && performance.now() - drainStart < 3000) await sleep(20);
  while (performance.now() - state.lastFrameMs < 300 && performance.now() - drainStart < 15_000) {
    await sleep(50);
  }

  const seconds = (t1 - t0) / 1e6;
  const serverCpu = cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null;
  const p99 = percentile(expected, 0.99);
  const generatorCpu = (gen1.user + gen1.system) / 1e6;
  // What the rest of the machine used meanwhile (other programs, and the
  // kernel's own network work not charged to either process).
  const otherCpu =
    busy0 !== null && busy1 !== null && serverCpu !== null ? busy1 - busy0 - serverCpu - generatorCpu : null;
  const result = {
    label,
    rate_per_room: rate,
    rooms: ROOMS,
    per_room: PER_ROOM,
    seconds: Number(seconds.toFixed(3)),
    messages_sent: windowSent,
    send_rate: Number((windowSent / (measureSeconds * ROOMS)).toFixed(1)),
    deliveries_expected: expected,
    deliveries_received: state.windowReceived,
    delivered_per_s: Math.round(receivedInWindow / seconds),
    p50_ms: percentile(expected, 0.5),
    p95_ms: percentile(expected, 0.95),
    p99_ms: p99,
    server_cpu_s: serverCpu,
    server_cpu_share: serverCpu === null ? null : Number((serverCpu / seconds).toFixed(3)),
    deliveries_per_cpu_s: serverCpu ? Math.round(receivedInWindow / serverCpu) : null,
    generator_cpu_share: Number((generatorCpu / seconds).toFixed(3)),
    other_cpu_share: otherCpu === null ? null : Number((otherCpu / seconds).toFixed(3)),
    errors: state.errors - errorsBefore,
    closed: state.closed - closedBefore,
  };
  result.held =
    p99 !== null &&
    p99 <= options['p99-ms'] &&
    result.deliveries_received === expected &&
    result.errors === 0 &&
    result.closed === 0 &&
    windowSent >= 0.97 * rate * measureSeconds * ROOMS - ROOMS;
  emit({ event: 'step', ...result });
  const fmt = (v) => (v === null ? 'lost' : v.toFixed(1));
  say(
    `${label} ${rate}/s/room: ${result.delivered_per_s} deliveries/s, p50 ${fmt(result.p50_ms)} ms, ` +
      `p99 ${fmt(p99)} ms, ${result.deliveries_received}/${expected}, server CPU ${result.server_cpu_share}, ` +
      `generator CPU ${result.generator_cpu_share}, other ${result.other_cpu_share} → ` +
      `${result.held ? 'held' : 'NOT held'}`,
  );
  return result;
}

// The machine is shared: other programs' load shows up as latency spikes
// that have nothing to do with the server measured. A step that fails while
// the rest of the machine was busy is run again (twice at most); a probe that
// missed by little on a quiet machine, once.
const DISTURBED = options.disturbed; // cores used by everything else during a step
let lastDisturbed = true; // the first step waits for a quiet machine too

// Waits (at most --quiet-max seconds) until the rest of the machine has used
// less than DISTURBED of a core over half a second.
async function waitForQuiet() {
  const started = performance.now();
  while (performance.now() - started < options['quiet-max'] * 1000) {
    const busy0 = machineBusySeconds();
    const server0 = serverCpuSeconds();
    const own0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(500);
    const own = process.cpuUsage(own0);
    const elapsed = (performance.now() - t0) / 1000;
    const busy1 = machineBusySeconds();
    const server1 = serverCpuSeconds();
    if (busy0 === null || busy1 === null || server0 === null || server1 === null) return 0;
    const other = (busy1 - busy0 - (server1 - server0) - (own.user + own.system) / 1e6) / elapsed;
    if (other < DISTURBED) break;
  }
  const waited = (performance.now() - started) / 1000;
  if (waited > 1) say(`waited ${waited.toFixed(1)} s for the rest of the machine to calm down`);
  return waited;
}

async function measuredStep(senders, rate, seconds, label, warmup) {
  if (lastDisturbed) await waitForQuiet();
  const result = await runStep(senders, rate, seconds, label, warmup);
  lastDisturbed = result.other_cpu_share !== null && result.other_cpu_share > DISTURBED;
  result.disturbed = lastDisturbed;
  return result;
}

async function runStepWithRetries(senders, rate, seconds, label, warmup, retryNearMiss, accept) {
  const steps = [await measuredStep(senders, rate, seconds, label, warmup)];
  let nearMissRetried = false;
  while (steps.length < 3) {
    const last = steps[steps.length - 1];
    if (accept(last) || last.closed) break;
    const disturbed = last.disturbed;
    const nearMiss =
      retryNearMiss && !nearMissRetried && last.p99_ms !== null && last.p99_ms <= 3 * options['p99-ms'];
    if (!disturbed && !nearMiss) break;
    if (!disturbed) nearMissRetried = true;
    steps.push(await measuredStep(senders, rate, seconds, `${label} again`, warmup));
  }
  return steps;
}

const round1 = (value) => Math.round(value * 10) / 10;

// A short probe counts as held only with some room under the limit
// (--probe-margin of it): a rate at the very edge for 2.5 s seldom holds 10 s.
const probeHeld = (step) => step.held && step.p99_ms <= options['probe-margin'] * options['p99-ms'];

// Raises the rate by --factor while it holds, then bisects between the last
// rate held and the first one not held until they are within --resolution,
// with short probe windows; then the best rate must hold for the full
// --confirm window, or 15 % less (three confirm windows at most).
async function search(senders) {
  const steps = [];
  let low = null;
  let high = null;
  let rate = options.search;
  for (let probe = 0; probe < options['max-probes']; probe += 1) {
    // The first probe is at the same rate for every server: longer, for a
    // finer CPU figure at that common point.
    const seconds = probe === 0 ? Math.max(options.probe, options['first-probe']) : options.probe;
    const attempts = await runStepWithRetries(senders, rate, seconds, 'probe', options.warmup, true, probeHeld);
    steps.push(...attempts);
    const result = attempts[attempts.length - 1];
    if (result.closed) break;
    if (probeHeld(result)) low = rate;
    else high = rate;
    if (low === null) rate = round1(rate / options.factor);
    else if (high === null) rate = round1(rate * options.factor);
    else rate = round1((low + high) / 2);
    if (high !== null && low !== null && (high - low) / low <= options.resolution) break;
    if (rate === low || rate === high || rate < 0.1) break;
    if (rate > options['max-rate']) break;
  }
  let best = null;
  let candidate = low;
  let confirms = 0;
  while (candidate !== null && candidate >= 0.1 && confirms < 3) {
    const attempts = await runStepWithRetries(
      senders,
      candidate,
      options.confirm,
      'confirm',
      options['confirm-warmup'],
      false,
      (step) => step.held,
    );
    confirms += attempts.length;
    steps.push(...attempts);
    const result = attempts[attempts.length - 1];
    if (result.held) {
      best = result;
      break;
    }
    if (result.closed) break;
    candidate = round1(candidate * 0.85);
  }
  return { steps, best };
}

// ---------------------------------------------------------------- main

async function main() {
  const groups = options.setup ? JSON.parse(fs.readFileSync(options.setup, 'utf8')).groups : null;
  if (options.kind === 'gortc' && (!groups || groups.length < ROOMS)) {
    throw new Error('--setup must list at least --rooms groups for gortc');
  }
  const wire = {
    raw: 'raw WebSocket, payload as the text frame',
    sio: 'socket.io protocol v5 over its engine.io v4 WebSocket transport (no socket.io-client)',
    gortc: 'gortc protocol: message.send / message.created',
  }[options.kind];
  const rssIdle = serverRssKiB();
  const cpuBeforeConnect = serverCpuSeconds();
  const { connections, seconds: connectSeconds } = await connectAll(groups);
  const settleSeconds = await settle();
  await sleep(500);
  const rssConnected = serverRssKiB();
  const cpuAfterConnect = serverCpuSeconds();
  const total = connections.length;
  const rss = {
    connections: total,
    rss_idle_kib: rssIdle,
    rss_connected_kib: rssConnected,
    rss_per_connection_kib:
      rssIdle !== null && rssConnected !== null ? Number(((rssConnected - rssIdle) / total).toFixed(2)) : null,
    connect_seconds: Number(connectSeconds.toFixed(2)),
    settle_seconds: Number(settleSeconds.toFixed(2)),
    connect_server_cpu_s:
      cpuBeforeConnect !== null ? Number((cpuAfterConnect - cpuBeforeConnect).toFixed(2)) : null,
    frames_during_connect: state.framesTotal,
  };
  emit({ event: 'connected', ...rss });
  say(
    `RSS ${rssIdle} KiB idle → ${rssConnected} KiB with ${total} connections ` +
      `(${rss.rss_per_connection_kib} KiB each); ${state.framesTotal} frames while connecting`,
  );

  const result = { event: 'result', kind: options.kind, wire, ...rss, steps: [], best: null, fixed: [] };
  if (options.mode === 'fanout') {
    const senders = connections.filter((c) => c.sender);
    if (options.rates) {
      for (const rate of options.rates.split(',').map(Number)) {
        const step = await measuredStep(senders, rate, options.measure, 'rate', options['confirm-warmup']);
        result.steps.push(step);
        if (step.held && (!result.best || step.rate_per_room > result.best.rate_per_room)) result.best = step;
        if (step.closed) break;
      }
    } else if (options.search > 0) {
      const { steps, best } = await search(senders);
      result.steps = steps;
      result.best = best;
    }
    if (options.fixed) {
      for (const rate of options.fixed.split(',').map(Number)) {
        if (state.closed) break;
        let step = await measuredStep(senders, rate, options.measure, 'fixed', options['confirm-warmup']);
        if (step.disturbed) step = await measuredStep(senders, rate, options.measure, 'fixed again', options['confirm-warmup']);
        result.fixed.push(step);
      }
    }
  }
  result.acks = state.acks;
  result.errors = state.errors;
  result.error_codes = state.errorCodes;
  result.closed = state.closed;
  result.close_codes = state.closeCodes;
  emit(result);
  state.stopping = true;
  for (const connection of connections) connection.ws.terminate();
  clearTimeout(hardStop);
  setTimeout(() => process.exit(0), 200);
}

main().catch((error) => {
  emit({ event: 'error', error: error.message });
  say(error.stack);
  process.exit(2);
});
