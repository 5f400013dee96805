// llm-orchestrate dashboard: the run overview, the Gantt timeline, agent
// details and the run history. One script for the live server (data from the
// API and the event stream) and for the HTML report (data embedded).
(function () {
  'use strict';

  const cfg = JSON.parse(document.getElementById('llmo-data').textContent || '{}');
  const LIVE = cfg.mode === 'live';
  const token = new URLSearchParams(location.search).get('token');
  const app = document.getElementById('app');
  const nav = document.getElementById('nav');
  const conn = document.getElementById('conn');

  const S = {
    runs: null, runId: null, run: null, agents: new Map(), order: [], activity: [],
    lastSeq: 0, clockOffset: 0, es: null, outputs: new Map(), error: null, loading: false,
  };

  // ---- helpers -------------------------------------------------------------
  const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  function esc(v) { return String(v == null ? '' : v).replace(/[&<>"']/g, (c) => ESC[c]); }
  function enc(v) { return encodeURIComponent(v); }
  function withToken(url) {
    return token ? url + (url.indexOf('?') >= 0 ? '&' : '?') + 'token=' + enc(token) : url;
  }
  async function api(path) {
    const r = await fetch(path, { headers: token ? { Authorization: 'Bearer ' + token } : {}, cache: 'no-store' });
    if (!r.ok) throw new Error(r.status + ': ' + (await r.text()).trim());
    return r;
  }
  // Live: the server's clock. Report: the moment it was made (frozen).
  function now() { return LIVE || !S.run ? Date.now() + S.clockOffset : S.run.nowMs; }
  function pad(n) { return String(n).padStart(2, '0'); }
  function dur(ms) {
    if (ms == null || !isFinite(ms)) return '–';
    if (ms < 9950) return (Math.max(0, ms) / 1000).toFixed(1) + 's';
    let s = Math.round(ms / 1000);
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    return h ? h + 'h' + pad(m) + 'm' : m ? m + 'm' + pad(s) + 's' : s + 's';
  }
  function clock(ms) {
    if (!ms) return '–';
    const d = new Date(ms);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function stamp(ms) {
    if (!ms) return '–';
    const d = new Date(ms);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + clock(ms);
  }
  function tokens(u) {
    const t = u ? (u.inputTokens || 0) + (u.outputTokens || 0) : 0;
    return t >= 1e6 ? (t / 1e6).toFixed(1) + 'M' : t >= 1e3 ? (t / 1e3).toFixed(1) + 'k' : String(t);
  }
  function cost(c) { return '$' + (c || 0).toFixed(c && c < 1 ? 4 : 2); }
  function label(status) { return String(status || '').replace(/-/g, ' '); }
  const RUNNING = new Set(['running', 'retrying']);
  const TROUBLE = new Set(['failed', 'timed-out', 'stalled', 'blocked']);
  function outcomeWord(run) { return run && run.outcome ? run.outcome : (run && run.lastSeq ? 'running' : 'waiting'); }
  function runHref(id) { return '#/run/' + enc(id); }
  function agentHref(id) { return '#/run/' + enc(S.runId) + '/agent/' + enc(id); }
  function setConn(text, cls) { conn.textContent = text; conn.className = 'conn ' + (cls || ''); }

  // ---- data ------------------------------------------------------------------
  function loadView(view) {
    S.run = view.run;
    if (LIVE) S.clockOffset = view.run.nowMs - Date.now();
    S.agents = new Map();
    S.order = [];
    for (const a of view.agents) { S.order.push(a.id); S.agents.set(a.id, a); }
    S.activity = view.activity.slice();
    S.lastSeq = view.run.lastSeq;
  }

  function onJournal(message) {
    if (message.seq <= S.lastSeq) return; // already in the view
    S.lastSeq = message.seq;
    for (const a of message.agents) {
      if (!S.agents.has(a.id)) S.order.push(a.id);
      S.agents.set(a.id, a);
      const out = S.outputs.get(a.id);
      if (out) out.stale = true;
    }
    if (message.all) {
      // Every agent, in the (possibly new) plan's order.
      const ids = message.agents.map((a) => a.id);
      S.order = ids.concat(S.order.filter((id) => ids.indexOf(id) < 0));
    }
    if (message.line) {
      S.activity.push(message.line);
      if (S.activity.length > 200) S.activity.shift();
    }
    schedule();
  }

  function closeStream() { if (S.es) { S.es.close(); S.es = null; } }

  function openStream(id) {
    const es = new EventSource(withToken('api/runs/' + enc(id) + '/events?after=' + S.lastSeq));
    S.es = es;
    es.addEventListener('journal', (ev) => { if (S.es === es) onJournal(JSON.parse(ev.data)); });
    es.addEventListener('summary', (ev) => {
      if (S.es !== es) return;
      S.run = JSON.parse(ev.data);
      S.clockOffset = S.run.nowMs - Date.now();
      schedule();
    });
    es.addEventListener('problem', (ev) => { S.error = JSON.parse(ev.data).message; schedule(); });
    es.onopen = () => { setConn('live', 'live'); };
    es.onerror = () => { setConn('reconnecting…', 'down'); };
  }

  async function openRun(id) {
    if (S.runId === id) return;
    closeStream();
    Object.assign(S, { runId: id, run: null, agents: new Map(), order: [], activity: [], lastSeq: 0, error: null });
    S.outputs.clear();
    if (!LIVE) {
      if (cfg.run && cfg.run.run.runId === id) loadView(cfg.run);
      else S.error = 'This report holds run ' + (cfg.run ? cfg.run.run.runId : '?') + ' only.';
      return;
    }
    S.loading = true;
    try {
      const view = await (await api('api/runs/' + enc(id))).json();
      if (S.runId !== id) return;
      loadView(view);
      openStream(id);
    } catch (e) {
      S.error = String(e.message || e);
    }
    S.loading = false;
    schedule();
  }

  async function loadRuns() {
    if (!LIVE) { S.runs = cfg.history || []; return; }
    try { S.runs = await (await api('api/runs')).json(); S.error = null; } catch (e) { S.error = String(e.message || e); }
    schedule();
  }

  async function loadOutput(id) {
    if (!LIVE) return; // the report embeds each agent's output tail
    let out = S.outputs.get(id);
    if (!out) { out = { text: null, stale: true, busy: false, at: 0 }; S.outputs.set(id, out); }
    if (out.busy || !out.stale || Date.now() - out.at < 800) return;
    out.busy = true; out.stale = false; out.at = Date.now();
    try {
      out.text = await (await api('api/runs/' + enc(S.runId) + '/agents/' + enc(id) + '/output')).text();
    } catch (e) {
      out.text = '(cannot load the output: ' + (e.message || e) + ')';
    }
    out.busy = false;
    schedule();
  }

  // ---- routing ---------------------------------------------------------------
  function parseRoute() {
    const parts = location.hash.replace(/^#\/?/, '').split('/').map((p) => { try { return decodeURIComponent(p); } catch (e) { return p; } });
    if (parts[0] === 'run' && parts[1]) {
      if (parts[2] === 'agent' && parts[3]) return { view: 'agent', run: parts[1], agent: parts[3] };
      return { view: 'run', run: parts[1] };
    }
    if (parts[0] === 'runs') return { view: 'runs' };
    return null;
  }

  function defaultHash() {
    if (!LIVE) return cfg.run ? runHref(cfg.run.run.runId) : '#/runs';
    return cfg.liveRun ? runHref(cfg.liveRun) : '#/runs';
  }

  function onRoute() {
    const r = parseRoute();
    if (!r) { location.replace(defaultHash()); return; }
    if (r.view === 'runs') { closeStream(); S.runId = null; S.error = null; loadRuns(); }
    else openRun(r.run);
    render();
    window.scrollTo(0, 0);
  }

  // ---- rendering ---------------------------------------------------------------
  let timer = null;
  function schedule() { if (!timer) timer = setTimeout(() => { timer = null; render(); }, 80); }

  function render() {
    const r = parseRoute() || {};
    nav.innerHTML = '<a href="#/runs">Runs</a>' + (S.runId ? '<a href="' + runHref(S.runId) + '">Run ' + esc(S.runId) + '</a>' : '');
    if (!LIVE) setConn('report of ' + stamp(Date.parse(cfg.generatedAt)), '');
    else if (!S.es && r.view !== 'runs') setConn(S.loading ? 'loading…' : 'offline', 'down');
    else if (r.view === 'runs') setConn('history', '');
    const err = S.error ? '<div class="error-banner" id="error">' + esc(S.error) + '</div>' : '';
    let body = '';
    if (r.view === 'runs') body = renderRuns();
    else if (!S.run) body = S.loading ? '<p class="muted">Loading…</p>' : '';
    else if (r.view === 'agent') body = renderAgent(r.agent);
    else body = renderRun();
    const outputBox = document.getElementById('output');
    const stick = outputBox ? outputBox.scrollTop + outputBox.clientHeight >= outputBox.scrollHeight - 4 : true;
    const keep = outputBox ? outputBox.scrollTop : 0;
    app.innerHTML = err + body;
    const box = document.getElementById('output');
    if (box) box.scrollTop = stick ? box.scrollHeight : keep;
    if (r.view === 'agent' && S.run) loadOutput(r.agent);
  }

  function elapsed(a) {
    if (!a.startedAtMs) return null;
    let end = a.finishedAtMs;
    if (end == null) {
      if (RUNNING.has(a.status)) end = now();
      else {
        const ends = a.attempts.map((s) => s.endMs).filter((e) => e != null);
        end = ends.length ? Math.max.apply(null, ends) : a.startedAtMs;
      }
    }
    return end - a.startedAtMs;
  }

  function gateBadges(a) {
    if (!a.gateBadges.length) return '';
    return '<div class="gbadges">' + a.gateBadges.map((g) => {
      const total = g.passed + g.failed;
      const count = total ? ' ' + (g.failed ? g.failed + '/' + total + ' failed' : g.passed + '/' + total) : '';
      return '<span class="gbadge ' + esc(g.status) + '" title="' + esc(g.gate + ': ' + g.status) + '">' + esc(g.gate) + count + '</span>';
    }).join('') + '</div>';
  }

  function card(a, critical) {
    const el = elapsed(a);
    const over = a.estimateMs != null && el != null && el > a.estimateMs && RUNNING.has(a.status);
    return '<a class="card st-' + esc(a.status) + (critical.has(a.id) ? ' critical' : '') + '" href="' + agentHref(a.id) +
      '" data-agent="' + esc(a.id) + '" data-status="' + esc(a.status) + '" data-progress="' + a.progress + '">' +
      '<div class="card-head"><span class="aid" title="' + esc(a.workDescription) + '">' + esc(a.id) + '</span>' +
      '<span class="badge st-' + esc(a.status) + '">' + esc(label(a.status)) + '</span></div>' +
      '<div class="bar"><div style="width:' + a.progress + '%"></div></div>' +
      '<div class="card-meta"><span class="pct">' + a.progress + '%</span>' +
      '<span class="time' + (over ? ' over' : '') + '" title="elapsed / estimate">' + dur(el) + ' / ' + (a.estimateMs != null ? dur(a.estimateMs) : '?') + '</span></div>' +
      gateBadges(a) +
      '<div class="card-foot"><span title="tokens">' + tokens(a.usage) + ' tok</span><span title="cost">' + cost(a.costUsd) + '</span>' +
      (a.attempt > 1 ? '<span>attempt ' + a.attempt + '</span>' : '') + '</div>' +
      (a.lastStatusText ? '<div class="status-text" title="' + esc(a.lastStatusText) + '">' + esc(a.lastStatusText) + '</div>' : '') +
      '</a>';
  }

  function renderRun() {
    const run = S.run;
    const critical = new Set(run.criticalPath.agents);
    const word = outcomeWord(run);
    const end = run.finishedAtMs || (run.outcome ? null : now());
    const counts = Object.keys(run.counts).map((k) => '<span><b>' + run.counts[k] + '</b> ' + esc(label(k)) + '</span>').join('');
    let html = '<section class="panel run-head">' +
      '<div class="title"><h1>Run <span id="run-id">' + esc(run.runId || S.runId) + '</span></h1>' +
      '<span id="run-outcome" class="badge st-' + esc(word) + '" data-outcome="' + esc(word) + '">' + esc(label(word)) + '</span>' +
      (run.orchestrationId ? '<span class="muted">plan ' + esc(run.orchestrationId) + (run.mode ? ' · ' + esc(run.mode) : '') + '</span>' : '') + '</div>' +
      '<div class="muted">' + (run.startedAtMs ? 'started ' + stamp(run.startedAtMs) : 'not started yet') + '</div>' +
      '<div class="overall"><div class="bar big"><div style="width:' + run.overallProgress + '%"></div></div><b id="overall-progress">' + run.overallProgress + '%</b></div>' +
      '<div class="stats"><span><b>' + run.agentCount + '</b> agents</span>' + counts +
      '<span>elapsed <b>' + (run.startedAtMs ? dur((end || run.startedAtMs) - run.startedAtMs) : '–') + '</b></span>' +
      '<span>tokens <b>' + tokens(run.usage) + '</b></span><span>cost <b>' + cost(run.costUsd) + '</b></span>' +
      '<span>attempts <b>' + run.attempts + '</b></span>' +
      '<span>critical path <b>' + dur(run.criticalPath.lengthMs) + '</b></span></div>' +
      (run.description ? '<div class="muted" style="grid-column:1/-1">' + esc(run.description) + '</div>' : '') +
      '</section>';

    html += '<h2>Waves</h2><div class="lanes" id="lanes">';
    const placed = new Set();
    for (const w of run.waves) {
      html += '<section class="lane" data-wave="' + esc(w.id) + '"><header><span class="wname">Wave ' + w.number + ': ' + esc(w.id) + '</span>' +
        '<span class="muted">' + (w.parallel ? 'parallel' : 'one after another') + ' · ' + w.agents.length + ' agents</span>' +
        '<span><span class="badge st-' + esc(w.state) + '">' + esc(w.state) + '</span></span></header><div class="cards">';
      for (const id of w.agents) { const a = S.agents.get(id); placed.add(id); if (a) html += card(a, critical); }
      html += '</div></section>';
    }
    const others = S.order.filter((id) => !placed.has(id));
    if (others.length) {
      html += '<section class="lane"><header><span class="wname">' + (run.waves.length ? 'Outside the plan' : 'Agents') + '</span></header><div class="cards">' +
        others.map((id) => card(S.agents.get(id), critical)).join('') + '</div></section>';
    }
    html += '</div>';

    html += '<h2>Timeline</h2>' + renderGantt(critical);

    if (run.gates.length || Object.keys(run.stages).length) {
      html += '<h2>Quality gates</h2><div class="panel">';
      for (const name of Object.keys(run.stages)) {
        const st = run.stages[name];
        const verdict = st.passed ? (st.review === true ? 'approved' : 'passed') : st.review === false ? 'rejected' : st.failedAction ? 'failed (' + st.failedAction + ')' : 'not finished';
        html += '<div>stage <b>' + esc(name) + '</b>: ' + esc(verdict) + '</div>';
      }
      html += run.gates.map(gateRun).join('') + '</div>';
    }

    html += '<h2>Activity</h2><div class="panel activity" id="activity">' +
      S.activity.slice().reverse().map((l) => '<div><time>' + clock(l.atMs) + '</time>' + esc(l.text) + '</div>').join('') +
      (S.activity.length ? '' : '<span class="muted">Nothing yet.</span>') + '</div>';
    return html;
  }

  function renderGantt(critical) {
    const run = S.run;
    const agents = S.order.map((id) => S.agents.get(id)).filter(Boolean);
    let t0 = Infinity;
    let t1 = -Infinity;
    let running = false;
    for (const a of agents) {
      for (const s of a.attempts) {
        t0 = Math.min(t0, s.startMs);
        if (s.endMs == null) running = true;
        t1 = Math.max(t1, s.endMs == null ? now() : s.endMs);
        if (s.endMs == null && a.estimateMs != null) t1 = Math.max(t1, s.startMs + a.estimateMs);
      }
    }
    if (!isFinite(t0)) { t0 = run.startedAtMs || now(); t1 = t0 + 1000; }
    if (running && LIVE) t1 = Math.max(t1, now());
    const span = Math.max(t1 - t0, 1000);
    const pct = (t) => ((t - t0) / span * 100).toFixed(3) + '%';
    let html = '<div class="panel gantt" id="gantt"><div class="g-axis"><div></div><div class="g-track">';
    for (let i = 0; i <= 4; i++) {
      html += '<span class="g-tick" style="left:' + (i * 25) + '%">' + (i === 0 ? clock(t0) : '+' + dur(span * i / 4)) + '</span>';
    }
    html += '</div></div>';
    for (const a of agents) {
      html += '<div class="g-row' + (critical.has(a.id) ? ' critical' : '') + '" data-agent="' + esc(a.id) + '" data-status="' + esc(a.status) + '">' +
        '<a class="g-label" href="' + agentHref(a.id) + '" title="' + esc(a.id + ' · ' + label(a.status)) + '">' + esc(a.id) + '</a><div class="g-track">';
      for (const s of a.attempts) {
        const end = s.endMs == null ? now() : s.endMs;
        if (s.endMs == null && a.estimateMs != null) {
          html += '<div class="g-est" style="left:' + pct(s.startMs) + ';width:' + ((a.estimateMs) / span * 100).toFixed(3) + '%" title="estimate ' + dur(a.estimateMs) + '"></div>';
        }
        html += '<div class="g-bar o-' + esc(s.outcome || 'running') + '" data-attempt="' + s.attempt + '" style="left:' + pct(s.startMs) + ';width:' + ((end - s.startMs) / span * 100).toFixed(3) + '%" title="' +
          esc(a.id + ' attempt ' + s.attempt + ': ' + (s.outcome || 'running') + ', ' + dur(end - s.startMs)) + '"></div>';
      }
      if (!a.attempts.length) html += '<span class="g-none">' + esc(label(a.status === 'pending' ? 'not started' : a.status)) + '</span>';
      if (running && LIVE) html += '<div class="g-now" style="left:' + pct(now()) + '"></div>';
      html += '</div></div>';
    }
    html += '<div class="legend"><span class="crit">critical path: ' + (run.criticalPath.agents.length ? run.criticalPath.agents.map(esc).join(' → ') + ' (' + dur(run.criticalPath.lengthMs) + ')' : '–') + '</span>' +
      '<span>bars: attempts (dashed: estimate of a running attempt)</span></div></div>';
    return html;
  }

  function gateLine(g) {
    const r = g.result;
    const total = r.passed + r.failed;
    let detail = '';
    if (r.status === 'failed') detail = r.failed ? '(' + r.failed + '/' + total + ' tests failed)' : '(' + (r.detail || (r.exitCode != null ? 'exit code ' + r.exitCode : 'failed')) + ')';
    else if (r.status === 'passed') detail = total ? '(' + r.passed + '/' + total + ' tests)' : '';
    else detail = '(' + (r.detail || 'skipped') + ')';
    return '[GATE: ' + r.gate + '] Service: ' + g.service + ' - ' + r.status.toUpperCase() + ' ' + detail;
  }

  function gateRun(g) {
    const r = g.result;
    let html = '<div class="gate" data-gate="' + esc(r.gate) + '"><div class="line ' + esc(r.status) + '">' + esc(gateLine(g)) +
      ' <span class="muted">' + esc(g.level + (g.stage ? ' · stage ' + g.stage : '') + ' · ' + dur(r.durationMs)) + '</span></div>';
    for (const f of r.failures) {
      html += '<details class="failure" open><summary>' + esc(f.name) + '</summary><pre>' + esc(f.message) + '</pre></details>';
    }
    if (r.suggestion) html += '<div class="failure"><b>Suggested fixes</b><pre>' + esc(r.suggestion) + '</pre></div>';
    if (r.status === 'failed' && !r.failures.length && r.outputTail) html += '<details class="failure"><summary>output</summary><pre>' + esc(r.outputTail) + '</pre></details>';
    return html + '</div>';
  }

  function errorBlock(e) {
    return '<div class="errblock">[ERROR: ' + esc(e.title) + ']' +
      (e.cause ? '\nCause: ' + esc(e.cause) : '') + (e.impact ? '\nImpact: ' + esc(e.impact) : '') +
      (e.recommendation ? '\nRecommendation: ' + esc(e.recommendation) : '') + '</div>';
  }

  function renderAgent(id) {
    const a = S.agents.get(id);
    const crumbs = '<div class="crumbs"><a href="#/runs">Runs</a> › <a href="' + runHref(S.runId) + '">' + esc(S.runId) + '</a> › ' + esc(id) + '</div>';
    if (!a) return crumbs + '<p>No agent ' + esc(id) + ' in this run.</p>';
    const el = elapsed(a);
    const deps = a.dependencies.length ? a.dependencies.map((d) => '<a href="' + agentHref(d) + '">' + esc(d) + '</a>').join(', ') : '–';
    const git = a.git ? esc(a.git.branch) + (a.git.commit ? ' @ ' + esc(a.git.commit.slice(0, 10)) : '') + (a.git.merged ? ' · merged' : '') : '–';
    let html = crumbs + '<section class="panel run-head" id="agent" data-agent="' + esc(a.id) + '" data-status="' + esc(a.status) + '" data-progress="' + a.progress + '">' +
      '<div class="title"><h1>' + esc(a.id) + '</h1><span class="badge st-' + esc(a.status) + '">' + esc(label(a.status)) + '</span>' +
      (S.run.criticalPath.agents.indexOf(a.id) >= 0 ? '<span class="muted" style="color:var(--crit)">on the critical path</span>' : '') + '</div><div></div>' +
      '<div class="overall"><div class="bar big"><div style="width:' + a.progress + '%"></div></div><b>' + a.progress + '%</b></div>' +
      (a.lastStatus ? '<div class="muted" style="grid-column:1/-1">' + esc(a.lastStatus) + ' ' + esc(a.lastStatusText) + '</div>' : '') + '</section>';
    html += '<div class="cols"><div><h2>Work</h2><div class="panel"><p>' + esc(a.workDescription || '–') + '</p><dl class="facts">' +
      '<dt>wave</dt><dd>' + esc(a.wave ? a.waveNumber + ': ' + a.wave : '–') + '</dd>' +
      '<dt>depends on</dt><dd>' + deps + '</dd>' +
      '<dt>scope</dt><dd>' + esc(a.scope.join(', ') || '–') + '</dd>' +
      '<dt>runs on</dt><dd>' + esc(a.runsOn || '–') + '</dd>' +
      '<dt>attempts</dt><dd>' + a.attempt + '</dd>' +
      '<dt>started</dt><dd>' + stamp(a.startedAtMs) + '</dd>' +
      '<dt>finished</dt><dd>' + stamp(a.finishedAtMs) + '</dd>' +
      '<dt>elapsed / estimate</dt><dd>' + dur(el) + ' / ' + (a.estimateMs != null ? dur(a.estimateMs) : '?') + '</dd>' +
      '<dt>tokens</dt><dd>' + (a.usage.inputTokens || 0) + ' in (' + (a.usage.cachedInputTokens || 0) + ' cached), ' + (a.usage.outputTokens || 0) + ' out</dd>' +
      '<dt>cost</dt><dd>' + cost(a.costUsd) + (a.unpricedRequests ? ' (+' + a.unpricedRequests + ' unpriced requests)' : '') + '</dd>' +
      (a.toolUses ? '<dt>tool uses</dt><dd>' + a.toolUses + '</dd>' : '') +
      '<dt>exit code</dt><dd>' + (a.exitCode == null ? '–' : a.exitCode) + '</dd>' +
      '<dt>branch</dt><dd>' + git + '</dd></dl></div></div><div>';

    const troubled = TROUBLE.has(a.status);
    html += '<h2>Errors</h2><div class="panel" id="errors">';
    if (troubled) {
      html += errorBlock({
        title: 'Agent ' + a.id + (a.status === 'blocked' ? ' blocked' : ' failed'),
        cause: a.status === 'blocked' ? a.blockers.join('; ') : a.lastFailure || label(a.status),
        impact: a.impact, recommendation: a.recommendation,
      });
    }
    html += a.errors.map(errorBlock).join('');
    if (!troubled && !a.errors.length) html += '<span class="muted">None.</span>';
    if (a.blockers.length && a.status !== 'blocked') html += '<h3>Blockers</h3><ul class="plain">' + a.blockers.map((b) => '<li>' + esc(b) + '</li>').join('') + '</ul>';
    html += '</div>';

    html += '<h2>Quality gates</h2><div class="panel" id="gates">' + (a.gates.length ? a.gates.map(gateRun).join('') : '<span class="muted">No gate ran on this agent.</span>') + '</div>';
    html += '</div></div>';

    html += '<h2>Status history</h2><div class="panel"><table id="status-history"><tr><th>time</th><th>marker</th><th>text</th></tr>' +
      a.statusHistory.slice().reverse().map((s) => '<tr><td>' + clock(s.atMs) + '</td><td>' + esc(s.marker) + '</td><td>' + esc(s.text) + '</td></tr>').join('') +
      (a.statusHistory.length ? '' : '<tr><td colspan="3" class="muted">No STATUS marker yet.</td></tr>') + '</table></div>';

    if (a.reports.length) {
      html += '<h2>Progress reports</h2><div class="panel" id="reports">' + a.reports.slice().reverse().map((r) =>
        '<h3>' + clock(r.atMs) + ' · ' + esc(r.statusText || '') + (r.estimatedCompletion ? ' · done in ' + esc(r.estimatedCompletion) : '') + '</h3>' +
        (r.completedTasks.length ? '<div>completed:</div><ul class="plain">' + r.completedTasks.map((t) => '<li>' + esc(t) + '</li>').join('') + '</ul>' : '') +
        (r.remainingTasks.length ? '<div>remaining:</div><ul class="plain">' + r.remainingTasks.map((t) => '<li>' + esc(t) + '</li>').join('') + '</ul>' : '') +
        (r.blockers.length ? '<div>blockers:</div><ul class="plain">' + r.blockers.map((t) => '<li>' + esc(t) + '</li>').join('') + '</ul>' : '')
      ).join('') + '</div>';
    }

    html += '<h2>Attempts</h2><div class="panel"><table id="attempts"><tr><th>attempt</th><th>started</th><th>duration</th><th>outcome</th></tr>' +
      a.attempts.map((s) => '<tr><td>' + s.attempt + '</td><td>' + stamp(s.startMs) + '</td><td>' + dur((s.endMs == null ? now() : s.endMs) - s.startMs) + '</td><td>' + esc(s.outcome || 'running') + '</td></tr>').join('') +
      (a.attempts.length ? '' : '<tr><td colspan="4" class="muted">Not started.</td></tr>') + '</table></div>';

    const out = S.outputs.get(a.id);
    const text = LIVE ? (out ? out.text : null) : a.outputTail || '';
    html += '<h2>Output <span class="muted">(the end of agents/' + esc(a.id) + '/output.log)</span></h2><pre class="output" id="output">' +
      esc(text != null ? text || '(no output yet)' : 'loading…') + '</pre>';
    return html;
  }

  function renderRuns() {
    const runs = S.runs;
    if (!runs) return '<p class="muted">Loading…</p>';
    let html = '<h1>Runs</h1><p class="muted">' + (LIVE ? 'Runs found in the runs folder.' : 'The run of this report.') + '</p>' +
      '<table id="runs"><tr><th>run</th><th>plan</th><th>outcome</th><th>started</th><th class="num">duration</th><th class="num">agents</th>' +
      '<th class="num">completed</th><th class="num">failed</th><th class="num">blocked</th><th class="num">running</th><th class="num">cost</th></tr>';
    for (const r of runs) {
      const word = r.outcome || (r.live ? 'running' : r.running ? 'stopped' : 'unknown');
      html += '<tr data-run="' + esc(r.runId) + '"><td><a href="' + runHref(r.runId) + '">' + esc(r.runId) + '</a>' + (r.live ? ' <span class="badge st-running">live</span>' : '') + '</td>' +
        '<td>' + esc(r.orchestrationId || '–') + '</td><td><span class="badge st-' + esc(word) + '">' + esc(label(word)) + '</span>' + (r.error ? ' <span class="muted">' + esc(r.error) + '</span>' : '') + '</td>' +
        '<td>' + stamp(r.startedAtMs) + '</td><td class="num">' + dur(r.durationMs) + '</td><td class="num">' + r.agents + '</td>' +
        '<td class="num">' + r.completed + '</td><td class="num">' + r.failed + '</td><td class="num">' + r.blocked + '</td><td class="num">' + r.running + '</td>' +
        '<td class="num">' + cost(r.costUsd) + '</td></tr>';
    }
    if (!runs.length) html += '<tr><td colspan="11" class="muted">No runs yet.</td></tr>';
    return html + '</table>';
  }

  // ---- start -------------------------------------------------------------------
  window.addEventListener('hashchange', onRoute);
  setInterval(() => {
    const r = parseRoute() || {};
    if (r.view === 'runs' && LIVE) { loadRuns(); return; }
    if (!S.run || !LIVE) return;
    const busy = S.order.some((id) => { const a = S.agents.get(id); return a && RUNNING.has(a.status); });
    if (r.view === 'agent') { const out = S.outputs.get(r.agent); const a = S.agents.get(r.agent); if (out && a && RUNNING.has(a.status)) out.stale = true; }
    if (busy) schedule();
  }, 2000);
  onRoute();
})();
