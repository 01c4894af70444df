// The web dashboard: a browser client of the cerebrum protocol (docs/protocol.md) with the
// origin client's reconnection rules (3 s first delay, x1.5 per attempt, 5 attempts),
// heartbeat with latency, and an offline queue of 100 messages. No build step, no framework.

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

// ---------------------------------------------------------------------------------------------
// The page.

const $ = (id) => document.getElementById(id);

function text(id, value) {
  const node = $(id);
  if (node) node.textContent = value;
}

function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

function identity(params) {
  const stored = (key) => { try { return localStorage.getItem(key); } catch { return null; } };
  const keep = (key, value) => { try { localStorage.setItem(key, value); } catch { /* private mode */ } };
  let user = params.get('user') || stored('cerebrum.user');
  if (!user) user = 'web-' + Math.random().toString(36).slice(2, 8);
  keep('cerebrum.user', user);
  const name = params.get('name') || stored('cerebrum.name') || user;
  return { user, name };
}

function socketUrl(token) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const url = new URL(`${scheme}//${location.host}/ws`);
  if (token) url.searchParams.set('token', token);
  return url.toString();
}

function start() {
  const params = new URLSearchParams(location.search);
  const me = identity(params);
  let token = params.get('token') || sessionStorage.getItem('cerebrum.token') || '';
  const state = { studying: null, sessionStart: null, metricsAt: 0, sessions: new Map(), latencies: [] };

  text('user-id', me.user);
  text('user-name', me.name);
  const list = $('topics');
  for (const topic of TOPICS) {
    const option = document.createElement('option');
    option.value = topic;
    list.append(option);
  }

  let client = new CerebrumClient(socketUrl(token));
  window.cerebrum = client;

  const bind = (c) => {
    c.addEventListener('status', (e) => {
      const node = $('status');
      node.textContent = e.detail.status;
      node.dataset.status = e.detail.status;
      node.title = e.detail.reason || '';
    });
    c.addEventListener('open', () => {
      c.subscribe(`user:${me.user}`);
      if (state.studying) {
        // A restarted server forgot who studies what: announce the session again (a server
        // that still knows keeps the member as is).
        c.subscribe(`session:${topicSlug(state.studying)}`);
        c.transmit('study_session_start', { userId: me.user, topic: state.studying });
      }
    });
    c.addEventListener('welcome', (e) => {
      if (e.detail.payload?.userId) {
        me.user = e.detail.payload.userId;
        text('user-id', me.user);
      }
    });
    c.addEventListener('latency', (e) => {
      text('latency', `${e.detail} ms`);
      state.latencies.push(e.detail);
      if (state.latencies.length > 30) state.latencies.shift();
      drawSparkline(state.latencies);
    });
    c.addEventListener('queue', (e) => text('queued', String(e.detail)));
    c.addEventListener('study_metrics_update', (e) => renderMetrics(e.detail.payload, state));
    c.addEventListener('collaborative_session_update', (e) => {
      state.sessions.set(e.detail.payload.topic, e.detail.payload);
      renderSessions(state.sessions);
    });
    c.addEventListener('notification', (e) => {
      renderNotification(e.detail.payload);
      if (e.detail.messageId) c.transmit('ack', { messageId: e.detail.messageId });
    });
    c.addEventListener('system_status', (e) => renderSystem(e.detail.payload));
    c.addEventListener('unauthorized', () => {
      $('login').hidden = false;
      text('login-reason', token ? 'The token was refused. Paste a new one.' : 'This server requires a token.');
    });
  };
  bind(client);
  client.connect();

  $('login').addEventListener('submit', (event) => {
    event.preventDefault();
    token = $('token-input').value.trim();
    sessionStorage.setItem('cerebrum.token', token);
    $('login').hidden = true;
    client.disconnect();
    client = new CerebrumClient(socketUrl(token));
    window.cerebrum = client;
    bind(client);
    client.connect();
  });

  $('study-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const topic = $('topic-input').value.trim();
    if (state.studying) {
      client.transmit('study_session_end', { userId: me.user, topic: state.studying });
      state.studying = null;
      state.sessionStart = null;
      $('study-button').textContent = 'Start studying';
      text('current-topic', 'not studying');
      return;
    }
    if (!topic) return;
    state.studying = topic;
    state.sessionStart = Date.now();
    client.subscribe(`session:${topicSlug(topic)}`);
    client.transmit('study_session_start', { userId: me.user, topic, timestamp: Date.now() });
    $('study-button').textContent = 'Stop studying';
    text('current-topic', topic);
  });

  $('reconnect').addEventListener('click', () => client.reconnect());

  setInterval(() => {
    if (state.sessionStart) text('session-timer', formatDuration((Date.now() - state.sessionStart) / 1000));
    text('countdown', client.nextAttemptAt ? `${Math.max(0, Math.ceil((client.nextAttemptAt - Date.now()) / 1000))} s` : '–');
  }, 500);
}

function renderMetrics(m, state) {
  text('study-hours', Number(m.studyHours).toFixed(2));
  text('streak', String(m.streak));
  $('progress').value = m.progress;
  $('progress').textContent = `${Math.round(m.progress)}%`;
  text('progress-text', `${Math.round(m.progress)}% of today's goal`);
  if (m.currentTopic) text('current-topic', m.currentTopic);
  else if (!state.studying) text('current-topic', 'not studying');
  if (!state.sessionStart) text('session-timer', formatDuration(m.sessionDuration));
}

function renderSessions(sessions) {
  const root = $('sessions');
  root.replaceChildren();
  for (const session of sessions.values()) {
    const item = document.createElement('li');
    item.dataset.topic = session.topic;
    const title = document.createElement('strong');
    title.textContent = session.topic;
    const count = document.createElement('span');
    count.className = 'count';
    count.textContent = ` · ${session.activeUsers} active`;
    const people = document.createElement('ul');
    people.className = 'participants';
    people.setAttribute('aria-label', `Studying ${session.topic}`);
    for (const p of session.participants) {
      const li = document.createElement('li');
      li.dataset.userId = p.userId;
      li.textContent = p.userName;
      people.append(li);
    }
    item.append(title, count, people);
    root.append(item);
  }
  $('sessions-empty').hidden = sessions.size > 0;
}

function renderNotification(n) {
  const item = document.createElement('li');
  item.dataset.priority = n.priority;
  item.dataset.kind = n.type;
  item.dataset.id = n.id;
  const title = document.createElement('div');
  title.className = 'title';
  title.textContent = n.title;
  const body = document.createElement('div');
  body.textContent = n.message;
  item.append(title, body);
  if (n.actionUrl && n.actionText) {
    const link = document.createElement('a');
    link.href = n.actionUrl;
    link.textContent = n.actionText;
    item.append(link);
  }
  const root = $('notifications');
  root.prepend(item);
  while (root.children.length > 50) root.lastElementChild.remove();
}

function renderSystem(s) {
  text('system-status', s.status);
  const root = $('services');
  root.replaceChildren();
  for (const [name, up] of Object.entries(s.services)) {
    const li = document.createElement('li');
    const label = document.createElement('span');
    label.textContent = name;
    const state = document.createElement('span');
    state.className = up ? 'up' : 'down';
    state.textContent = up ? 'up' : 'down';
    li.append(label, state);
    root.append(li);
  }
  text('uptime', formatDuration(s.uptime));
  text('last-check', new Date(s.lastCheck).toLocaleTimeString());
}

function drawSparkline(values) {
  const max = Math.max(...values, 1);
  const step = values.length > 1 ? 120 / (values.length - 1) : 0;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(30 - (v / max) * 28).toFixed(1)}`);
  document.querySelector('#sparkline polyline').setAttribute('points', points.join(' '));
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}
