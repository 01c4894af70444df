// BASELINE ONLY — not used by anything but js/bench/inbound.mjs.
//
// The hand-written browser client that crates/server/web/app.js carried before the dashboard was
// rebuilt on @cerebrum/realtime (copied verbatim from commit 69377ca, the page code left out), kept
// here so that the benchmark can measure the old and the new client in the same run. It has no
// acks, no resume, and its rules were never checked by the core's property tests.

const DEFAULTS = {
  reconnectAttempts: 5,
  reconnectInterval: 3000,
  backoffFactor: 1.5,
  heartbeatInterval: 30000,
  heartbeatTimeout: 10000,
  connectionTimeout: 10000,
  queueCapacity: 100,
};

const TOPICS = [
  'Cell: The Unit of Life', 'Biomolecules', 'Cell Cycle and Cell Division',
  'Photosynthesis in Higher Plants', 'Respiration in Plants', 'Breathing and Exchange of Gases',
  'Body Fluids and Circulation', 'Neural Control and Coordination', 'Human Reproduction',
  'Principles of Inheritance and Variation', 'Molecular Basis of Inheritance', 'Evolution',
  'Human Health and Disease', 'Biotechnology: Principles and Processes', 'Ecosystem',
  'Biodiversity and Conservation',
];

/** Delay before reconnect attempt `n` (1-based): 3000, 4500, 6750, 10125, 15187.5 ms. */
export function backoffDelay(n, options = DEFAULTS) {
  return options.reconnectInterval * Math.pow(options.backoffFactor, Math.max(0, n - 1));
}

/** The slug of a topic, as the server names its session channel. */
export function topicSlug(topic) {
  return topic.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
}

let idCounter = 0;
function messageId() {
  idCounter += 1;
  return `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}-${idCounter}`;
}

/** A reconnecting protocol client for the browser. */
export class CerebrumClient extends EventTarget {
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = { ...DEFAULTS, ...options };
    this.status = 'disconnected';
    this.queue = [];
    this.attempts = 0;
    this.latency = null;
    this.nonce = 0;
    this.pings = new Map();
    this.subscriptions = new Set();
    this.timers = {};
    this.nextAttemptAt = null;
    this.stopped = false;
  }

  setStatus(status, reason = '') {
    if (this.status === status) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent('status', { detail: { status, reason } }));
  }

  connect() {
    this.stopped = false;
    this.open(this.attempts === 0 ? 'connecting' : 'reconnecting');
  }

  open(status) {
    this.clearTimers();
    this.setStatus(status);
    let socket;
    try {
      socket = new WebSocket(this.url, ['cerebrum.v1.json']);
    } catch (err) {
      this.setStatus('error', String(err));
      return;
    }
    this.socket = socket;
    this.timers.connect = setTimeout(() => socket.close(), this.options.connectionTimeout);
    socket.onopen = () => {
      clearTimeout(this.timers.connect);
      this.openedAt = Date.now();
      this.lastInbound = Date.now();
      this.setStatus('connected');
      for (const channel of this.subscriptions) this.transmit('subscribe', { channel });
      const queued = this.queue.splice(0);
      for (const frame of queued) socket.send(frame);
      this.dispatchEvent(new CustomEvent('queue', { detail: this.queue.length }));
      this.scheduleHeartbeat();
      this.ping(); // a first latency sample right away
      this.dispatchEvent(new Event('open'));
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => this.closed(event.code, event.reason);
  }

  receive(text) {
    this.lastInbound = Date.now();
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (!message || typeof message.type !== 'string') return;
    if (message.type === 'welcome') {
      this.welcome = message.payload;
      if (message.payload?.heartbeatIntervalMs) {
        this.options.heartbeatInterval = message.payload.heartbeatIntervalMs;
      }
    }
    if (message.type === 'pong') {
      const sent = this.pings.get(message.payload?.nonce);
      if (sent !== undefined) {
        this.pings.delete(message.payload.nonce);
        this.latency = Date.now() - sent;
        this.dispatchEvent(new CustomEvent('latency', { detail: this.latency }));
      }
      return;
    }
    // Stable connections reset the attempt count (the core's 5 s rule).
    if (this.attempts > 0 && Date.now() - this.openedAt > 5000) this.attempts = 0;
    this.dispatchEvent(new CustomEvent('message', { detail: message }));
    this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
  }

  closed(code, reason) {
    this.clearTimers();
    this.socket = null;
    this.dispatchEvent(new CustomEvent('close', { detail: { code, reason } }));
    if (this.stopped) {
      this.setStatus('disconnected', 'closed by the client');
      return;
    }
    if (code === 4001 || code === 4003) {
      this.setStatus('error', code === 4001 ? 'unauthorized' : 'forbidden');
      this.dispatchEvent(new CustomEvent('unauthorized', { detail: { code, reason } }));
      return;
    }
    if (this.attempts >= this.options.reconnectAttempts) {
      this.setStatus('error', 'gave up after ' + this.attempts + ' attempts');
      return;
    }
    this.attempts += 1;
    const delay = backoffDelay(this.attempts, this.options);
    this.nextAttemptAt = Date.now() + delay;
    this.setStatus('reconnecting', reason || `closed with ${code}`);
    this.timers.reconnect = setTimeout(() => {
      this.nextAttemptAt = null;
      this.open('reconnecting');
    }, delay);
  }

  scheduleHeartbeat() {
    clearInterval(this.timers.heartbeat);
    this.timers.heartbeat = setInterval(() => {
      const silentFor = Date.now() - this.lastInbound;
      if (silentFor > this.options.heartbeatInterval + this.options.heartbeatTimeout) {
        this.socket?.close(4000, 'heartbeat timeout');
        return;
      }
      this.ping();
    }, this.options.heartbeatInterval);
  }

  ping() {
    this.nonce += 1;
    this.pings.set(this.nonce, Date.now());
    this.transmit('ping', { nonce: this.nonce }, { volatile: true });
  }

  /** Sends a message; while offline it waits in a queue of at most 100 (oldest kept). */
  transmit(type, payload, { volatile = false } = {}) {
    const frame = JSON.stringify({ type, payload, timestamp: Date.now(), messageId: messageId() });
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(frame);
      return true;
    }
    if (volatile) return false;
    if (this.queue.length >= this.options.queueCapacity) {
      this.dispatchEvent(new CustomEvent('queue-full', { detail: type }));
      return false;
    }
    this.queue.push(frame);
    this.dispatchEvent(new CustomEvent('queue', { detail: this.queue.length }));
    return true;
  }

  subscribe(channel) {
    this.subscriptions.add(channel);
    if (this.status === 'connected') this.transmit('subscribe', { channel });
  }

  reconnect() {
    this.attempts = 0;
    this.stopped = false;
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close(1000, 'reconnect');
      this.socket = null;
    }
    this.open('connecting');
  }

  disconnect() {
    this.stopped = true;
    this.clearTimers();
    this.socket?.close(1000, 'client disconnect');
  }

  clearTimers() {
    clearTimeout(this.timers.connect);
    clearTimeout(this.timers.reconnect);
    clearInterval(this.timers.heartbeat);
  }
}

