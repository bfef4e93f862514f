// The page at / (docs/admin.md): live numbers pushed over /admin/live, and a console that connects
// as a user, shows what arrives, sends client events and publishes catalog events through
// /admin/api/publish (the server runs the API's own publish; this script never holds the API key).
// Plain JavaScript, no dependency: it is compiled into the binary as it is.
'use strict';

const $ = (id) => document.getElementById(id);
const HISTORY = 60; // points per chart: a minute at one snapshot a second
const MAX_EVENTS = 200; // lines kept in the event log
const state = { csrf: '', dev: false, socket: null, live: null, liveRetry: 1000, catalog: null, series: {}, threadSeries: {} };

// ---------- requests to the console ----------

async function call(method, path, body) {
  const init = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET') init.headers['X-Zena-CSRF'] = state.csrf;
  const res = await fetch(path, init);
  let data = {};
  try { data = await res.json(); } catch { data = { error: `HTTP ${res.status}` }; }
  return { status: res.status, data };
}

// ---------- access ----------

async function start() {
  const { data } = await call('GET', '/admin/api/session');
  state.dev = !!data.dev;
  $('mode').textContent = data.dev ? 'dev mode' : 'production';
  $('node').textContent = data.node ? `node ${data.node}, ${data.threads} event-loop threads` : '';
  if (!data.authenticated) return showLogin();
  state.csrf = data.csrf;
  await showApp();
}

function showLogin() {
  $('app').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('password').focus();
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const { status, data } = await call('POST', '/admin/api/login', { password: $('password').value });
  if (status !== 200) {
    $('login-error').textContent = data.error || `login failed (${status})`;
    $('password').setAttribute('aria-invalid', 'true');
    return;
  }
  $('password').value = '';
  $('login-error').textContent = '';
  state.csrf = data.csrf;
  await showApp();
});

$('logout').addEventListener('click', async () => {
  await call('POST', '/admin/api/logout');
  if (state.live) state.live.close();
  location.reload();
});

async function showApp() {
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = state.dev;
  $('mint-row').hidden = !state.dev;
  $('token-hint').textContent = state.dev ? '(optional: minted for the user id when empty)' : '(a JWT from your backend)';
  openLive();
  const { status, data } = await call('GET', '/admin/api/catalog');
  if (status === 200) {
    state.catalog = data;
    fillTypes($('publish-type'), data.server, 'deal.risk');
    fillTypes($('send-type'), data.client.filter((e) => !['ping', 'auth', 'auth.refresh'].includes(e.type)), 'typing.start');
    buildPublishFields();
    buildSendFields();
  }
}

// ---------- live view ----------

function openLive() {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/admin/live`;
  const ws = new WebSocket(url);
  state.live = ws;
  ws.onopen = () => { $('live-state').textContent = 'live'; state.liveRetry = 1000; };
  ws.onmessage = (m) => { try { showStats(JSON.parse(m.data)); } catch { /* not ours */ } };
  ws.onclose = () => {
    $('live-state').textContent = 'reconnecting';
    if (state.live !== ws) return;
    // Back off up to 10 s while the server is away.
    setTimeout(openLive, state.liveRetry);
    state.liveRetry = Math.min(state.liveRetry * 2, 10000);
  };
}

function showStats(s) {
  const values = { connections: s.connections, users: s.users, delivered: s.deliveredPerSecond, published: s.publishedPerSecond };
  for (const [name, value] of Object.entries(values)) {
    $(`v-${name}`).textContent = String(value);
    const series = (state.series[name] ||= []);
    series.push(value);
    if (series.length > HISTORY) series.shift();
    drawChart($(`c-${name}`), series);
  }
  const total = Math.max(1, s.connections);
  const charts = [];
  $('threads').replaceChildren(...s.threads.map((t) => {
    const series = (state.threadSeries[t.thread] ||= []);
    series.push(t.deliveredPerSecond);
    if (series.length > HISTORY) series.shift();
    const canvas = document.createElement('canvas');
    canvas.className = 'mini';
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', `thread ${t.thread} deliveries per second`);
    charts.push([canvas, series]);
    return row([`#${t.thread}`, String(t.connections), bar(t.connections / total), String(t.deliveredPerSecond), canvas]);
  }));
  for (const [canvas, series] of charts) drawChart(canvas, series);
  $('nodes').replaceChildren(...s.nodes.map((n) => row([
    n.self ? `${n.node} (this)` : n.node, String(n.connections), String(n.users),
    n.self ? String(n.deliveredPerSecond) : '–', n.self ? String(n.publishedPerSecond) : '–'])));
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    if (typeof c === 'string') td.textContent = c; else td.append(c);
    tr.append(td);
  }
  return tr;
}

function bar(share) {
  const span = document.createElement('span');
  span.className = 'bar';
  span.style.width = `${Math.round(share * 100)}px`;
  return span;
}

// A line over the last minute, scaled to its own maximum.
function drawChart(canvas, series) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 240;
  const h = canvas.clientHeight || 48;
  if (canvas.width !== Math.round(w * ratio)) { canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio); }
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, w, h);
  const max = Math.max(1, ...series);
  g.strokeStyle = '#0b5fff';
  g.fillStyle = 'rgba(11,95,255,.12)';
  g.lineWidth = 1.5;
  g.beginPath();
  series.forEach((v, i) => {
    const x = (i / (HISTORY - 1)) * (w - 2) + 1;
    const y = h - 2 - (v / max) * (h - 6);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
  canvas.setAttribute('aria-label', `${canvas.getAttribute('aria-label').split(':')[0]}: now ${series.at(-1)}, peak ${max}`);
}

// ---------- forms from the catalog ----------

function fillTypes(select, events, preferred) {
  select.replaceChildren(...events.map((e) => {
    const o = document.createElement('option');
    o.value = e.type;
    o.textContent = e.type;
    return o;
  }));
  if (events.some((e) => e.type === preferred)) select.value = preferred;
}

function eventOf(list, type) { return list.find((e) => e.type === type); }

// One control per payload field: its type decides the control, `required` marks it. Arrays and
// objects take JSON text. Each control names its field (data-field="payload.<name>"), so the
// API's refusal can be shown next to it.
function buildFields(container, spec, prefix) {
  const legend = container.querySelector('legend');
  container.replaceChildren(legend);
  const fields = spec && spec.payload && spec.payload.fields ? spec.payload.fields : [];
  if (fields.length === 0) {
    const p = document.createElement('p');
    p.className = 'hint';
    p.textContent = 'No payload fields.';
    container.append(p);
  }
  for (const f of fields) {
    const id = `${prefix}-${f.name}`;
    const label = document.createElement('label');
    label.htmlFor = id;
    label.textContent = `${f.name} `;
    const kind = document.createElement('small');
    kind.className = 'hint';
    kind.textContent = describe(f.type);
    label.append(kind);
    if (f.required) {
      const star = document.createElement('span');
      star.className = 'req';
      star.textContent = ' *';
      star.setAttribute('aria-hidden', 'true');
      label.append(star);
    }
    const control = controlFor(f);
    control.id = id;
    control.name = f.name;
    control.dataset.field = `payload.${f.name}`;
    control.dataset.kind = f.type.kind;
    if (f.required) { control.required = true; control.setAttribute('aria-required', 'true'); }
    const err = document.createElement('span');
    err.className = 'error';
    err.id = `err-${id}`;
    control.setAttribute('aria-describedby', err.id);
    container.append(label, control, err);
  }
}

function describe(t) {
  if (t.kind === 'array') return `(array of ${t.element ? (t.element.name || t.element.kind) : 'any'}, JSON)`;
  if (t.kind === 'object') return '(object, JSON)';
  if (t.kind === 'date') return '(date, ISO 8601)';
  if (t.kind === 'enum') return '(one of)';
  return `(${t.kind})`;
}

function controlFor(f) {
  const t = f.type;
  if (t.kind === 'enum' || t.kind === 'boolean') {
    const select = document.createElement('select');
    const values = t.kind === 'enum' ? t.values : ['true', 'false'];
    if (!f.required) values.unshift('');
    for (const v of values) {
      const o = document.createElement('option');
      o.value = v;
      o.textContent = v === '' ? '(leave out)' : v;
      select.append(o);
    }
    return select;
  }
  if (t.kind === 'array' || t.kind === 'object') {
    const area = document.createElement('textarea');
    area.rows = 2;
    area.spellcheck = false;
    area.placeholder = t.kind === 'array' ? '[]' : '{}';
    if (t.kind === 'array' && f.required) area.value = '[]';
    return area;
  }
  const input = document.createElement('input');
  input.autocomplete = 'off';
  if (t.kind === 'number') { input.type = 'number'; input.step = 'any'; input.inputMode = 'decimal'; }
  if (t.kind === 'date') input.placeholder = new Date().toISOString();
  return input;
}

// The payload the fields hold; empty fields are left out (the server says if one is required).
// A field that cannot be read (bad JSON) is reported next to it.
function readPayload(container) {
  const payload = {};
  for (const control of container.querySelectorAll('[data-field]')) {
    const raw = control.value;
    if (raw === '') continue;
    const kind = control.dataset.kind;
    if (kind === 'number') payload[control.name] = Number(raw);
    else if (kind === 'boolean') payload[control.name] = raw === 'true';
    else if (kind === 'array' || kind === 'object') {
      try { payload[control.name] = JSON.parse(raw); } catch {
        throw Object.assign(new Error(`${control.name} is not valid JSON`), { field: control.dataset.field, form: container });
      }
    } else payload[control.name] = raw;
  }
  return payload;
}

function clearErrors(form) {
  for (const e of form.querySelectorAll('.error')) e.textContent = '';
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
}

// Shows `message` next to the control of `field` ("payload.sources[0].id" goes to "sources").
function showFieldError(form, field, message) {
  const controls = [...form.querySelectorAll('[data-field]')];
  let control = null;
  for (let name = field; name;) {
    control = controls.find((c) => c.dataset.field === name) || null;
    if (control) break;
    const cut = Math.max(name.lastIndexOf('.'), name.lastIndexOf('['));
    if (cut <= 0) break;
    name = name.slice(0, cut);
  }
  if (!control && (field === 'userId' || field === 'userIds' || field === 'channel')) control = $('target');
  if (!control) return false;
  const err = $(control.getAttribute('aria-describedby') || `err-${control.id}`);
  if (err) err.textContent = message;
  control.setAttribute('aria-invalid', 'true');
  control.focus();
  return true;
}

function buildPublishFields() {
  buildFields($('publish-fields'), eventOf(state.catalog.server, $('publish-type').value), 'publish');
}
function buildSendFields() {
  buildFields($('send-fields'), eventOf(state.catalog.client, $('send-type').value), 'send');
}
$('publish-type').addEventListener('change', buildPublishFields);
$('send-type').addEventListener('change', buildSendFields);
$('publish-type').setAttribute('aria-describedby', 'err-type');
$('target').setAttribute('aria-describedby', 'err-target');
for (const radio of document.querySelectorAll('input[name=target-kind]')) {
  radio.addEventListener('change', () => {
    const kind = document.querySelector('input[name=target-kind]:checked').value;
    $('target').dataset.field = kind;
    $('target').placeholder = kind === 'channel' ? 'deal:123' : 'alice';
  });
}

$('publish-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = $('publish-form');
  clearErrors(form);
  $('publish-result').textContent = '';
  let payload;
  try { payload = readPayload($('publish-fields')); } catch (err) {
    showFieldError(form, err.field, err.message);
    return;
  }
  const kind = document.querySelector('input[name=target-kind]:checked').value;
  const body = { type: $('publish-type').value, [kind]: $('target').value, payload };
  const { status, data } = await call('POST', '/admin/api/publish', body);
  if (status === 200) {
    const where = data.channel ? ` on ${data.channel}${data.seq !== undefined ? ` seq ${data.seq}` : ''}` : '';
    $('publish-result').textContent = `delivered to ${data.delivered} connection(s)${where}`;
    return;
  }
  const message = data.error || `refused (${status})`;
  if (!data.field || !showFieldError(form, data.field, message)) $('publish-result').textContent = message;
});

$('send-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const form = $('send-form');
  clearErrors(form);
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) {
    $('send-result').textContent = 'connect first';
    return;
  }
  let payload;
  try { payload = readPayload($('send-fields')); } catch (err) {
    showFieldError(form, err.field, err.message);
    return;
  }
  const message = { type: $('send-type').value, payload };
  state.socket.send(JSON.stringify(message));
  logEvent(message, true);
  $('send-result').textContent = 'sent';
});

// ---------- the user's connection ----------

$('connect-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('connect-error').textContent = '';
  let token = $('token').value.trim();
  if (!token && state.dev) {
    const { status, data } = await call('POST', '/admin/api/token', { userId: $('user').value, channels: $('grants').value });
    if (status !== 200) {
      $('connect-error').textContent = data.error || `no token (${status})`;
      return;
    }
    token = data.token;
  }
  if (!token) {
    $('connect-error').textContent = 'paste a token first';
    $('token').focus();
    return;
  }
  if (state.socket) state.socket.close(1000);
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  state.socket = ws;
  $('conn-state').textContent = 'connecting';
  ws.onopen = () => {
    $('conn-state').textContent = 'open';
    $('disconnect').disabled = false;
    $('send').disabled = false;
  };
  ws.onmessage = (m) => {
    let message;
    try { message = JSON.parse(m.data); } catch { message = { type: '(not JSON)', payload: m.data }; }
    if (message.type === 'connected' && message.payload) {
      $('conn-state').textContent = `open as ${message.payload.userId} (connection ${message.payload.connectionId})`;
    }
    logEvent(message, false);
  };
  ws.onclose = (c) => {
    if (state.socket !== ws) return;
    $('conn-state').textContent = `closed ${c.code}${c.reason ? `: ${c.reason}` : ''}`;
    $('disconnect').disabled = true;
    $('send').disabled = true;
  };
});

$('disconnect').addEventListener('click', () => { if (state.socket) state.socket.close(1000); });
$('clear').addEventListener('click', () => $('events').replaceChildren());

function logEvent(message, sent) {
  const li = document.createElement('li');
  if (sent) li.className = 'sent';
  const head = document.createElement('div');
  head.className = 'head';
  const type = document.createElement('span');
  type.className = 'type';
  type.textContent = `${sent ? '→ ' : ''}${message.type}`;
  head.append(type);
  const extra = [];
  if (message.channel !== undefined) extra.push(`channel ${message.channel}`);
  if (message.seq !== undefined) extra.push(`seq ${message.seq}`);
  extra.push(new Date().toLocaleTimeString());
  head.append(` · ${extra.join(' · ')}`);
  const pre = document.createElement('pre');
  pre.textContent = JSON.stringify(message.payload, null, 2);
  li.append(head, pre);
  li.dataset.type = message.type;
  if (message.seq !== undefined) li.dataset.seq = String(message.seq);
  const list = $('events');
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
}

start().catch((err) => { $('mode').textContent = `cannot reach the server: ${err.message}`; });
