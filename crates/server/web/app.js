// The web dashboard: the page only. The client is @cerebrum/realtime (`/realtime.js`, bundled
// by `cargo xtask wasm`), the same package web apps install, on the Rust client core compiled to
// WebAssembly: reconnection, heartbeat, queue, acks and resume are the core's, not this file's.

import { WebSocketClient, sessionChannel } from '/realtime.js';

const TOPICS = [
  'Cell: The Unit of Life', 'Biomolecules', 'Cell Cycle and Cell Division',
  'Photosynthesis in Higher Plants', 'Respiration in Plants', 'Breathing and Exchange of Gases',
  'Body Fluids and Circulation', 'Neural Control and Coordination', 'Human Reproduction',
  'Principles of Inheritance and Variation', 'Molecular Basis of Inheritance', 'Evolution',
  'Human Health and Disease', 'Biotechnology: Principles and Processes', 'Ecosystem',
  'Biodiversity and Conservation',
];

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

/**
 * Whether a notification's `actionUrl` may become a link: `http:`/`https:` URLs and paths on
 * this site only (`javascript:`, `data:` and the like stay plain text).
 */
export function safeActionUrl(value) {
  if (typeof value !== 'string' || value === '') return null;
  if (value.startsWith('/') && !value.startsWith('//')) return value;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
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

function takeToken(params) {
  const fromUrl = params.get('token');
  if (fromUrl) {
    sessionStorage.setItem('cerebrum.token', fromUrl);
    // Out of the address bar and the history: the token travels in the `auth` frame only.
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
  }
  return sessionStorage.getItem('cerebrum.token') || '';
}

function start() {
  const params = new URLSearchParams(location.search);
  const me = identity(params);
  let token = takeToken(params);
  const state = { studying: null, sessionStart: null, sessions: new Map(), latencies: [], nextAttemptAt: null };

  text('user-id', me.user);
  text('user-name', me.name);
  const list = $('topics');
  for (const topic of TOPICS) {
    const option = document.createElement('option');
    option.value = topic;
    list.append(option);
  }

  const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
  let client = null;
  let stopChannels = [];

  const studyChannel = (topic) => {
    try {
      return sessionChannel(topic);
    } catch {
      return null;
    }
  };

  const open = () => {
    for (const stop of stopChannels) stop();
    stopChannels = [];
    client?.disconnect();
    client = new WebSocketClient({
      url,
      // Sent in an `auth` frame after the socket opens, never in the URL.
      token: token || undefined,
      tokenTransport: 'auth',
      onConnect: () => {
        // A first latency sample now rather than one heartbeat interval (30 s) later.
        client.networkChanged();
        if (state.studying) {
          // A restarted server forgot who studies what: announce the session again (a server
          // that still knows keeps the member as is).
          client.send('study_session_start', { userId: me.user, topic: state.studying });
        }
      },
    });
    window.cerebrum = client;
    client.onEvent((event) => {
      if (event.kind === 'status') {
        const node = $('status');
        node.textContent = event.to;
        node.dataset.status = event.to;
        node.title = event.reason || '';
        if (event.to !== 'reconnecting') state.nextAttemptAt = null;
      } else if (event.kind === 'reconnectScheduled') {
        state.nextAttemptAt = performance.now() + event.delayMs;
      } else if (event.kind === 'latency') {
        const ms = Math.round(event.ms);
        text('latency', `${ms} ms`);
        state.latencies.push(ms);
        if (state.latencies.length > 30) state.latencies.shift();
        drawSparkline(state.latencies);
      } else if (event.kind === 'welcome' && event.welcome.userId) {
        me.user = event.welcome.userId;
        text('user-id', me.user);
      } else if (event.kind === 'disconnected' && (event.code === 4001 || event.code === 4003)) {
        $('login').hidden = false;
        text('login-reason', token ? 'The token was refused. Paste a new one.' : 'This server requires a token.');
      }
      text('queued', String(client.getQueuedMessages().length));
    });
    client.on('study_metrics_update', (m) => renderMetrics(m.payload, state));
    client.on('collaborative_session_update', (m) => {
      state.sessions.set(m.payload.topic, m.payload);
      renderSessions(state.sessions);
    });
    client.on('notification', (m) => renderNotification(m.payload));
    client.on('system_status', (m) => renderSystem(m.payload));
    stopChannels.push(client.subscribe(`user:${me.user}`, () => {}));
    if (state.studying) {
      const channel = studyChannel(state.studying);
      if (channel) stopChannels.push(client.subscribe(channel, () => {}));
    }
    client.connect();
  };
  open();

  $('login').addEventListener('submit', (event) => {
    event.preventDefault();
    token = $('token-input').value.trim();
    sessionStorage.setItem('cerebrum.token', token);
    $('login').hidden = true;
    open();
  });

  $('study-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const topic = $('topic-input').value.trim();
    if (state.studying) {
      client.send('study_session_end', { userId: me.user, topic: state.studying });
      state.studying = null;
      state.sessionStart = null;
      $('study-button').textContent = 'Start studying';
      text('current-topic', 'not studying');
      return;
    }
    const channel = studyChannel(topic);
    if (!topic || !channel) return;
    state.studying = topic;
    state.sessionStart = Date.now();
    stopChannels.push(client.subscribe(channel, () => {}));
    client.send('study_session_start', { userId: me.user, topic, timestamp: Date.now() });
    $('study-button').textContent = 'Stop studying';
    text('current-topic', topic);
  });

  $('reconnect').addEventListener('click', () => client.reconnect());

  setInterval(() => {
    if (state.sessionStart) text('session-timer', formatDuration((Date.now() - state.sessionStart) / 1000));
    text('countdown', state.nextAttemptAt ? `${Math.max(0, Math.ceil((state.nextAttemptAt - performance.now()) / 1000))} s` : '–');
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
  if (n.actionText) {
    const href = safeActionUrl(n.actionUrl);
    if (href) {
      const link = document.createElement('a');
      link.href = href;
      link.rel = 'noopener noreferrer';
      link.textContent = n.actionText;
      item.append(link);
    } else {
      const plain = document.createElement('span');
      plain.className = 'action';
      plain.textContent = n.actionUrl ? `${n.actionText} (${n.actionUrl})` : n.actionText;
      item.append(plain);
    }
  }
  const root = $('notifications');
  // A notification is re-sent until it is acked (PROTOCOL.md section 5): one stored while the
  // page's pending page was being read can arrive live as well. One item per notification id.
  for (const old of root.querySelectorAll('li')) {
    if (old.dataset.id === n.id) old.remove();
  }
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
    const status = document.createElement('span');
    status.className = up ? 'up' : 'down';
    status.textContent = up ? 'up' : 'down';
    li.append(label, status);
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
