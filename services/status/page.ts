/**
 * The status page: one self-contained HTML file (inline CSS and script, charts drawn as inline
 * SVG, no external assets, nothing vendored). It polls `status.json` beside it every second and
 * renders the document (members, lanes, models and rollouts, controllers, throughput and latency
 * charts, recent actions); its lookup form fetches `status/requests/<id>` and renders the
 * request's replayed path. Every value from the log is set with `textContent`, never parsed as
 * HTML. When the data routes answer 401/403 (an admin token is configured), it asks for the token
 * and sends it as `Authorization: Bearer`, kept in the tab's sessionStorage only.
 *
 * The markup's ids are the page's contract with its browser test (`status.int.test.ts`):
 * `#throughput`, `#members tbody`, `#request-id`, `#lookup`, `#path .hop`.
 */

export const STATUS_PAGE_STYLE = `
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f8fafc;--card:#fff;--ok:#16a34a;--warn:#d97706;--bad:#dc2626;--accent:#4b6bfb}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:baseline;gap:1rem;flex-wrap:wrap;padding:.8rem 1.5rem;background:#0f172a;color:#e2e8f0}
header h1{font-size:1.15rem;margin:0;font-weight:650}header h1 span{color:#94a3b8;font-weight:400}
#meta{font-size:.85rem;color:#94a3b8}
.conn{display:inline-block;border-radius:999px;padding:0 .55rem;font-size:.75rem;font-weight:600;margin-left:.4rem}
.conn.ok{background:#14532d;color:#bbf7d0}.conn.bad{background:#7f1d1d;color:#fecaca}.conn.wait{background:#334155;color:#cbd5e1}
main{padding:1rem 1.5rem 2rem;max-width:1400px;margin:0 auto}
.notice{border:1px solid #fca5a5;background:#fef2f2;color:#7f1d1d;border-radius:8px;padding:.6rem .9rem;margin-bottom:1rem}
.notice input{margin:0 .4rem;padding:.25rem .4rem;min-width:18rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:.8rem;margin-bottom:1rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:.7rem .9rem}
.card .label{color:var(--muted);font-size:.78rem;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:1.6rem;font-weight:650;font-variant-numeric:tabular-nums;line-height:1.3}
.card .value small{font-size:.85rem;font-weight:400;color:var(--muted)}
.card .sub{color:var(--muted);font-size:.8rem}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:.8rem;margin-bottom:1rem}
figure{margin:0;background:var(--card);border:1px solid var(--line);border-radius:10px;padding:.6rem .8rem}
figcaption{font-weight:600;font-size:.9rem;margin-bottom:.3rem}
.legend{font-weight:400;color:var(--muted);font-size:.8rem;margin-left:.6rem}
.legend i{display:inline-block;width:.7rem;height:.7rem;border-radius:2px;margin:0 .25rem 0 .6rem;vertical-align:-1px}
.c-completed{background:#16a34a}.c-failed{background:#ea580c}.c-rejected{background:#dc2626}.c-p50{background:#4b6bfb}.c-p99{background:#c026d3}
.card .value.leader{font-size:1.05rem;line-height:2.1}
#auth-form{display:inline}
svg.chart{width:100%;height:180px;display:block}
svg.chart text{font:11px system-ui,sans-serif;fill:#6b7280}
svg.chart .grid{stroke:#e5e7eb;stroke-width:1}
svg.chart polyline{fill:none;stroke-width:1.6;stroke-linejoin:round}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:.7rem .9rem;margin-bottom:1rem;overflow-x:auto}
section h2{font-size:.95rem;margin:0 0 .5rem}
.two{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:.8rem;margin-bottom:1rem}
.two section{margin:0}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border-bottom:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top;white-space:nowrap}
th{color:var(--muted);font-weight:600;font-size:.78rem;text-transform:uppercase;letter-spacing:.03em}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.wrap,#models td{white-space:normal}
.empty{color:var(--muted);font-style:italic}
.badge{display:inline-block;border-radius:999px;padding:0 .5rem;font-size:.75rem;font-weight:600}
.b-ok{background:#dcfce7;color:#166534}.b-warn{background:#fef3c7;color:#92400e}.b-bad{background:#fee2e2;color:#991b1b}.b-idle{background:#f1f5f9;color:#475569}
.bar{display:flex;height:14px;border-radius:4px;overflow:hidden;min-width:160px;background:#f1f5f9}
.bar span{display:block;height:100%;color:#fff;font-size:10px;line-height:14px;padding-left:3px;overflow:hidden;white-space:nowrap}
#lane-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(26px,1fr));gap:3px}
#lane-grid div{height:26px;border-radius:4px;font-size:10px;display:flex;align-items:center;justify-content:center;color:#fff;background:#cbd5e1}
#lane-grid div.ok{background:var(--ok)}#lane-grid div.warn{background:var(--warn)}#lane-grid div.bad{background:var(--bad)}
.lane-legend{color:var(--muted);font-size:.8rem;margin-top:.4rem}
a.rid{color:var(--accent);cursor:pointer;text-decoration:underline dotted}
form#lookup{display:flex;gap:.5rem;margin-bottom:.6rem}
form#lookup input{flex:1;max-width:36rem;padding:.35rem .5rem;font:13px ui-monospace,Menlo,Consolas,monospace;border:1px solid #cbd5e1;border-radius:6px}
form#lookup button{padding:.35rem .9rem;border:0;border-radius:6px;background:var(--accent);color:#fff;font-weight:600;cursor:pointer}
.chips span{display:inline-block;border-radius:999px;padding:.05rem .6rem;margin:0 .3rem .3rem 0;background:#eef2ff;font-size:.8rem}
ol.hops{list-style:none;padding:0;margin:.4rem 0}
.hop{border-left:4px solid #cbd5e1;padding:.3rem .7rem;margin:.35rem 0;background:#fafafa;border-radius:0 6px 6px 0}
.hop .kind{font-weight:700;letter-spacing:.03em;margin-right:.5rem;font-size:.8rem}
.hop .t{font:12px ui-monospace,Menlo,Consolas,monospace;color:var(--muted);margin-right:.5rem}
.k-received{border-color:#4b6bfb}.k-received .kind{color:#4b6bfb}
.k-routed{border-color:#7c3aed}.k-routed .kind{color:#7c3aed}
.k-rerouted{border-color:#c026d3}.k-rerouted .kind{color:#c026d3}
.k-started{border-color:#0891b2}.k-started .kind{color:#0891b2}
.k-completed{border-color:#16a34a}.k-completed .kind{color:#16a34a}
.k-failed,.k-rejected,.k-deadlettered{border-color:#dc2626}.k-failed .kind,.k-rejected .kind,.k-deadlettered .kind{color:#dc2626}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.8rem}
`;

/** The page's script (plain ES2017, no dependencies). */
export const STATUS_PAGE_SCRIPT = `
(function () {
  'use strict';
  var root = location.pathname.replace(/\\/status\\/?$/, '');
  var TOKEN_KEY = 'switchyard-admin-token';
  var token = sessionStorage.getItem(TOKEN_KEY);
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'className') e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c !== null && c !== undefined) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function headers() { return token ? { authorization: 'Bearer ' + token } : {}; }
  function num(v, digits) { return v === null || v === undefined ? '—' : (digits === undefined ? String(v) : Number(v).toFixed(digits)); }
  function age(ms) {
    if (ms === null || ms === undefined) return '—';
    if (ms < 1000) return Math.max(0, Math.round(ms)) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
    if (ms < 3600000) return Math.round(ms / 60000) + ' min';
    return (ms / 3600000).toFixed(1) + ' h';
  }
  function badge(text, kind) { return el('span', { className: 'badge b-' + kind, text: text }); }
  function td(content, cls) {
    var c = el('td', cls ? { className: cls } : null);
    if (content instanceof Node) c.appendChild(content); else c.textContent = content === null || content === undefined ? '—' : String(content);
    return c;
  }
  function fill(tbody, rows, columns, emptyText) {
    tbody.replaceChildren();
    if (rows.length === 0) { tbody.appendChild(el('tr', null, [el('td', { className: 'empty', colspan: String(columns), text: emptyText })])); return; }
    rows.forEach(function (r) { tbody.appendChild(r); });
  }

  // -- charts ------------------------------------------------------------------------------
  var W = 600, H = 180, L = 44, R = 8, T = 10, B = 22;
  function niceMax(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }
  function drawChart(node, lines, seconds, unit) {
    node.replaceChildren();
    var max = 0;
    lines.forEach(function (l) { l.values.forEach(function (v) { if (v !== null && v > max) max = v; }); });
    max = niceMax(max);
    var x = function (i) { return L + (W - L - R) * (seconds <= 1 ? 0 : i / (seconds - 1)); };
    var y = function (v) { return T + (H - T - B) * (1 - v / max); };
    [0, 0.5, 1].forEach(function (f) {
      var v = max * f;
      node.appendChild(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), 'class': 'grid' }));
      var t = svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' });
      t.textContent = (v >= 100 || v === 0 ? Math.round(v) : v.toPrecision(2)) + (f === 1 ? ' ' + unit : '');
      node.appendChild(t);
    });
    var ago = function (sec) { return sec < 120 ? '-' + Math.round(sec) + ' s' : '-' + Number((sec / 60).toFixed(1)) + ' min'; };
    var marks = [[0, ago(seconds)], [Math.floor((seconds - 1) / 2), ago(seconds / 2)], [seconds - 1, 'now']];
    marks.forEach(function (m, i) {
      var t = svg('text', { x: x(m[0]), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === 2 ? 'end' : 'middle' });
      t.textContent = m[1];
      node.appendChild(t);
    });
    lines.forEach(function (l) {
      var pts = [];
      var flush = function () {
        if (pts.length === 1) { var p = pts[0].split(','); node.appendChild(svg('circle', { cx: p[0], cy: p[1], r: 2, fill: l.color })); }
        else if (pts.length > 1) node.appendChild(svg('polyline', { points: pts.join(' '), stroke: l.color }));
        pts = [];
      };
      l.values.forEach(function (v, i) { if (v === null) flush(); else pts.push(x(i).toFixed(1) + ',' + y(v).toFixed(1)); });
      flush();
    });
  }

  // -- rendering ---------------------------------------------------------------------------
  function healthKind(m) {
    if (m.status === 'evicted') return 'bad';
    if (m.health === 'ok' && m.status === 'live') return 'ok';
    if (m.status === 'no lane' || m.status === 'left') return 'idle';
    return 'warn';
  }
  function renderMembers(doc) {
    var rows = doc.members.map(function (m) {
      var kind = healthKind(m);
      var w = m.window;
      return el('tr', { 'data-worker': m.workerId }, [
        td(m.workerId, 'mono'), td(m.lane, 'num'), td(m.zone),
        td(badge(m.status, m.status === 'live' ? 'ok' : m.status === 'evicted' ? 'bad' : m.status === 'draining' ? 'warn' : 'idle')),
        td(badge(m.health, kind === 'bad' ? 'bad' : kind === 'idle' ? 'idle' : m.health === 'ok' ? 'ok' : 'warn')),
        td(age(m.heartbeatAgeMs), 'num'),
        td(m.load === null ? '—' : Math.round(m.load * 100) + ' %', 'num'),
        td(m.queueDepth === null ? '—' : m.queueDepth + (m.queueDelayMs ? ' (' + age(m.queueDelayMs) + ')' : ''), 'num'),
        td(num(m.inFlight) + ' / ' + num(m.capacity), 'num'),
        td(w === null ? '—' : w.results + ' · ' + w.errors + ' err · ' + (w.latencyMs === null ? '—' : Math.round(w.latencyMs) + ' ms'), 'num'),
        td(m.ejection ? badge(m.ejection.state + ' (' + m.ejection.cause + ')', 'bad') : m.evicted ? (m.status === 'left' ? 'left ' : 'evicted ') + age(doc.at - m.evicted.at) + ' ago: ' + m.evicted.reason : ''),
      ]);
    });
    fill($('members').tBodies[0], rows, 11, 'No members: no worker has claimed a lane.');
  }
  function renderModels(doc) {
    var colors = ['#4b6bfb', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6'];
    var rows = doc.models.map(function (m) {
      var split = el('div', { className: 'bar' });
      if (m.rollout) m.rollout.weights.forEach(function (w, i) {
        var s = el('span', { text: w.version + ' ' + w.percent + '%', title: w.version + ': weight ' + w.weight + (w.version === m.rollout.canaryVersion ? ' (canary)' : w.version === m.rollout.stableVersion ? ' (stable)' : '') });
        s.style.width = w.percent + '%';
        s.style.background = colors[i % colors.length];
        split.appendChild(s);
      });
      var versions = m.versions.map(function (v) { return v.version + (v.loadedBy ? ' ×' + v.loadedBy : ''); }).join(', ');
      return el('tr', null, [
        td(m.model, 'mono'), td(versions, 'wrap'), td(m.rollout ? split : 'latest: ' + (m.latest || '—')),
        td(m.rollout ? m.rollout.stableVersion + (m.rollout.canaryVersion ? ' / canary ' + m.rollout.canaryVersion : '') : '—'), td(m.fallbackModel),
      ]);
    });
    fill($('models').tBodies[0], rows, 5, 'No model registered.');
  }
  function renderControllers(doc) {
    var c = doc.controller;
    var rows = c.controllers.map(function (r) {
      return el('tr', null, [td(r.controllerId, 'mono'), td(badge(r.role, r.role === 'leader' ? 'ok' : 'idle')), td(r.epoch === null ? '—' : r.epoch, 'num'), td(age(r.lastTickAgeMs), 'num'), td(r.seq, 'num')]);
    });
    fill($('controllers').tBodies[0], rows, 5, 'No controller tick seen.');
  }
  function renderLanes(doc) {
    var grid = $('lane-grid');
    grid.replaceChildren();
    var byLane = {};
    doc.lanes.holders.forEach(function (h) { byLane[h.lane] = h; });
    for (var lane = 0; lane < doc.lanes.total; lane++) {
      var h = byLane[lane];
      var cls = !h ? '' : h.status === 'draining' || h.health !== 'ok' ? 'warn' : 'ok';
      grid.appendChild(el('div', { className: cls, title: 'lane ' + lane + (h ? ': ' + h.workerId + ' (' + h.status + ', ' + h.health + ')' : ': free'), text: String(lane) }));
    }
  }
  function actionRows(list, withRequest) {
    return list.map(function (a) {
      var cells = [td(age(doc0.at - a.at) + ' ago', 'num'), td(badge(a.kind, a.kind === 'evicted' || a.kind === 'shed' ? 'bad' : a.kind === 'redispatched' || a.kind === 'draining' || a.kind === 'superseded' ? 'warn' : 'idle')), td(a.subject, 'mono')];
      if (withRequest) {
        var link = el('a', { className: 'rid mono', text: a.requestId, title: 'look up this request' });
        link.addEventListener('click', function () { lookup(a.requestId); });
        cells.push(td(link));
      }
      cells.push(td(a.detail, 'wrap'));
      var tr = el('tr', { title: new Date(a.at).toISOString() + ' · by ' + a.producer }, cells);
      return tr;
    });
  }
  var doc0 = null;
  function render(doc) {
    doc0 = doc;
    var r = doc.rates;
    $('throughput').textContent = num(r.completedPerSec, 1);
    $('throughput-sub').textContent = 'completed/s over ' + r.seconds + ' s · failed ' + num(r.failedPerSec, 1) + ' · rejected ' + num(r.rejectedPerSec, 1);
    $('p50').textContent = r.p50Ms === null ? '—' : num(r.p50Ms);
    $('p99').textContent = r.p99Ms === null ? '—' : num(r.p99Ms);
    $('latency-sub').textContent = 'p50 / p99 ms over ' + r.latencySeconds + ' s' + (r.cacheHitRatio === null ? '' : ' · cache hits ' + Math.round(r.cacheHitRatio * 100) + ' %');
    $('members-healthy').textContent = doc.summary.healthy + ' / ' + doc.summary.members;
    $('members-sub').textContent = 'healthy · ' + doc.summary.draining + ' draining · ' + doc.summary.evicted + ' evicted · ' + doc.summary.left + ' left · queue ' + doc.summary.queueDepth;
    $('lanes-held').textContent = doc.lanes.held + ' / ' + doc.lanes.total;
    $('lanes-sub').textContent = 'held · ' + doc.lanes.free + ' free' + (doc.lanes.claimsRefused ? ' · ' + doc.lanes.claimsRefused + ' claims refused' : '');
    var c = doc.controller;
    $('leader').textContent = c.leader || 'none';
    $('leader-sub').textContent = 'epoch ' + c.epoch + (c.leaderTickAgeMs === null ? '' : ' · last tick ' + age(c.leaderTickAgeMs) + ' ago');
    var rec = doc.recent;
    $('recent').textContent = rec.evictions + ' · ' + rec.redispatches + ' · ' + rec.sheds;
    $('recent-sub').textContent = 'evictions · re-dispatches · sheds in ' + Math.round(rec.seconds / 60) + ' min';
    var s = doc.series;
    var n = s.completed.length;
    drawChart($('chart-throughput'), [
      { values: s.completed, color: '#16a34a' }, { values: s.failed, color: '#ea580c' }, { values: s.rejected, color: '#dc2626' },
    ], n, '/s');
    drawChart($('chart-latency'), [{ values: s.p50Ms, color: '#4b6bfb' }, { values: s.p99Ms, color: '#c026d3' }], n, 'ms');
    renderMembers(doc);
    renderModels(doc);
    renderControllers(doc);
    renderLanes(doc);
    fill($('actions').tBodies[0], actionRows(doc.actions, false), 4, 'No control action yet.');
    fill($('request-actions').tBodies[0], actionRows(doc.requestActions, true), 5, 'No re-dispatch, shed or superseded outcome.');
    var src = doc.source;
    $('source').textContent = src.description;
    $('updated').textContent = new Date(doc.at).toLocaleTimeString();
    setConn(src.error ? 'bad' : 'ok', src.error ? 'log unreadable' : 'live');
    var err = $('error');
    err.hidden = !src.error;
    if (src.error) err.textContent = 'The log could not be read (' + src.error.code + '): ' + src.error.message + '. Showing what was read before; retrying.';
  }
  function setConn(kind, text) { var c = $('conn'); c.className = 'conn ' + kind; c.textContent = text; }

  // -- polling and auth --------------------------------------------------------------------
  function showAuth(body) {
    var box = $('auth');
    box.hidden = false;
    $('auth-message').textContent = (body && body.error && body.error.message) || 'An admin token is required.';
    setConn('bad', 'not authorized');
  }
  $('auth-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    token = $('auth-token').value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
    $('auth').hidden = true;
    poll();
  });
  var timer = null;
  function poll() {
    clearTimeout(timer);
    fetch(root + '/status.json', { headers: headers(), cache: 'no-store' })
      .then(function (res) {
        if (res.status === 401 || res.status === 403) return res.json().then(showAuth, function () { showAuth(null); });
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json().then(render);
      })
      .catch(function (e) { setConn('bad', 'offline'); $('error').hidden = false; $('error').textContent = 'Cannot reach the status service: ' + e.message + '. Retrying every second.'; })
      .then(function () { timer = setTimeout(poll, 1000); });
  }

  // -- request lookup ----------------------------------------------------------------------
  function renderPath(t) {
    var out = $('path');
    out.replaceChildren();
    var chips = el('div', { className: 'chips' }, [
      el('span', { text: t.outcome }), t.totalMs === null ? null : el('span', { text: t.totalMs + ' ms end to end' }),
      el('span', { text: t.attempts + ' routing(s)' }), t.cache === null ? null : el('span', { text: 'cache ' + t.cache }),
      t.request ? el('span', { text: 'model ' + t.request.model }) : null,
    ]);
    out.appendChild(el('div', null, [el('strong', { className: 'mono', text: t.requestId }), ' ', el('a', { href: root + '/status/requests/' + encodeURIComponent(t.requestId) + '?format=html', target: '_blank', text: 'full page' })]));
    out.appendChild(chips);
    var ol = el('ol', { className: 'hops' });
    t.hops.forEach(function (h) {
      ol.appendChild(el('li', { className: 'hop k-' + h.kind, 'data-kind': h.kind }, [
        el('span', { className: 'kind', text: h.kind.toUpperCase() }),
        el('span', { className: 't', text: h.sinceReceivedMs === null ? new Date(h.at).toISOString() : '+' + h.sinceReceivedMs + ' ms' }),
        el('span', { text: h.summary }),
      ]));
    });
    out.appendChild(ol);
    if (t.stages.length > 0) {
      var table = el('table', null, [el('tbody', null, t.stages.map(function (s) { return el('tr', null, [td(s.name), td(s.ms + ' ms', 'num')]); }))]);
      out.appendChild(table);
    }
  }
  function lookup(id) {
    id = (id || '').trim();
    if (!id) return;
    $('request-id').value = id;
    var out = $('path');
    out.replaceChildren(el('p', { className: 'empty', text: 'Looking up ' + id + '…' }));
    fetch(root + '/status/requests/' + encodeURIComponent(id), { headers: headers(), cache: 'no-store' })
      .then(function (res) { return res.json().then(function (body) { return { ok: res.ok, body: body }; }); })
      .then(function (r) {
        if (r.ok) { renderPath(r.body); history.replaceState(null, '', '#request=' + encodeURIComponent(id)); }
        else out.replaceChildren(el('p', { className: 'notice', text: (r.body.error && r.body.error.code ? r.body.error.code + ': ' : '') + ((r.body.error && r.body.error.message) || 'lookup failed') }));
      })
      .catch(function (e) { out.replaceChildren(el('p', { className: 'notice', text: 'Lookup failed: ' + e.message })); });
  }
  $('lookup').addEventListener('submit', function (ev) { ev.preventDefault(); lookup($('request-id').value); });

  var m = /^#request=(.+)$/.exec(location.hash);
  if (m) lookup(decodeURIComponent(m[1]));
  poll();
})();
`;

const BODY = `
<header><h1>Switchyard <span>status</span></h1><div id="meta"><span id="source">…</span> · updated <span id="updated">never</span><span id="conn" class="conn wait">connecting</span></div></header>
<main>
<div id="auth" class="notice" hidden><span id="auth-message"></span><form id="auth-form"><input id="auth-token" type="password" placeholder="admin token" autocomplete="off"><button>Use token</button></form></div>
<div id="error" class="notice" hidden></div>
<div class="cards">
  <div class="card"><div class="label">Throughput</div><div class="value"><span id="throughput">—</span> <small>req/s</small></div><div class="sub" id="throughput-sub"></div></div>
  <div class="card"><div class="label">Latency</div><div class="value"><span id="p50">—</span> <small>/</small> <span id="p99">—</span> <small>ms</small></div><div class="sub" id="latency-sub"></div></div>
  <div class="card"><div class="label">Members</div><div class="value" id="members-healthy">—</div><div class="sub" id="members-sub"></div></div>
  <div class="card"><div class="label">Lanes</div><div class="value" id="lanes-held">—</div><div class="sub" id="lanes-sub"></div></div>
  <div class="card"><div class="label">Controller leader</div><div class="value mono leader" id="leader">—</div><div class="sub" id="leader-sub"></div></div>
  <div class="card"><div class="label">Recent</div><div class="value" id="recent">—</div><div class="sub" id="recent-sub"></div></div>
</div>
<div class="charts">
  <figure><figcaption>Throughput per second<span class="legend"><i class="c-completed"></i>completed<i class="c-failed"></i>failed<i class="c-rejected"></i>rejected</span></figcaption><svg id="chart-throughput" class="chart" viewBox="0 0 600 180" preserveAspectRatio="none" role="img" aria-label="throughput per second"></svg></figure>
  <figure><figcaption>Latency per second (routing → completed)<span class="legend"><i class="c-p50"></i>p50<i class="c-p99"></i>p99</span></figcaption><svg id="chart-latency" class="chart" viewBox="0 0 600 180" preserveAspectRatio="none" role="img" aria-label="latency per second"></svg></figure>
</div>
<section><h2>Members</h2><table id="members"><thead><tr><th>worker</th><th>lane</th><th>zone</th><th>status</th><th>health</th><th>heartbeat</th><th>load</th><th>queue</th><th>in flight / cap.</th><th>results · errors · latency</th><th></th></tr></thead><tbody></tbody></table></section>
<div class="two">
  <section><h2>Models and rollouts</h2><table id="models"><thead><tr><th>model</th><th>versions (×loaded by)</th><th>traffic split</th><th>stable / canary</th><th>fallback</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Controllers</h2><table id="controllers"><thead><tr><th>controller</th><th>role</th><th>epoch</th><th>last tick</th><th>seq</th></tr></thead><tbody></tbody></table></section>
</div>
<section><h2>Lanes</h2><div id="lane-grid"></div><div class="lane-legend">green: held by a healthy member · amber: draining or stale · grey: free</div></section>
<div class="two">
  <section><h2>Control actions</h2><table id="actions"><thead><tr><th>when</th><th>action</th><th>subject</th><th>detail</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Re-dispatches, sheds, superseded outcomes</h2><table id="request-actions"><thead><tr><th>when</th><th>action</th><th>worker / model</th><th>request</th><th>detail</th></tr></thead><tbody></tbody></table></section>
</div>
<section><h2>Request lookup</h2><form id="lookup"><input id="request-id" placeholder="request id" autocomplete="off" spellcheck="false"><button type="submit">Look up</button></form><div id="path"><p class="empty">Enter a request id to see its path, replayed from the log: received, routed, started, completed.</p></div></section>
</main>`;

/** The whole page. */
export function statusPageHtml(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Switchyard status</title><link rel="icon" href="data:,"><style>${STATUS_PAGE_STYLE}</style></head>
<body>${BODY}
<script>${STATUS_PAGE_SCRIPT}</script>
</body></html>
`;
}
