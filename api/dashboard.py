"""The operator's dashboard: one page in English, refreshed every 2 s from `/monitor`.

At the top the overall state — green "All well", amber "Attention needed" or red "Something is wrong",
in words as well as colour — with its reasons (`api.monitoring.overall`); right below it the overdue
obligations (red) and those at risk (amber); then the lag per topic from the broker in messages and
seconds with its trend, purchases registered per minute as a chart with axes (the last 30 full
minutes, times in UTC), the day's compliance per reporter, the register's aggregates, each worker,
dead letters, obligations by state, treatment places and reads of personal data. Times are UTC
throughout, numbers in English (`en-GB`). When the API stops answering, a banner says so and the last
figures stay, marked stale; it goes when the API answers again.
"""

from __future__ import annotations

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>reghub dashboard</title>
<style>
body{font:15px system-ui;margin:1.5em;color:#222}h1{font-size:1.4em;margin:.2em 0}
h2{font-size:1.1em;margin:1.2em 0 .3em}
table{border-collapse:collapse}td,th{padding:.25em .9em;border-bottom:1px solid #ddd;text-align:right}
th{text-align:left;font-weight:600}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(22em,1fr));gap:1em 2.5em}
#banner{display:none;background:#b00020;color:#fff;padding:.6em 1em;font-weight:600;margin-bottom:1em}
.stale{opacity:.45}.down{color:#b00020;font-weight:600}.up{color:#1b5e20}svg{border:1px solid #ddd}
#state{padding:.7em 1em;border-radius:6px;border:2px solid}#state ul{margin:.3em 0 0;padding-left:1.2em}
#state-words{font-size:1.5em;font-weight:700}
.green{background:#e8f5e9;border-color:#2e7d32;color:#1b5e20}
.amber{background:#fff4d6;border-color:#e0a000;color:#6d4c00}
.red{background:#fde7e9;border-color:#c62828;color:#8e0000}
li.red,li.amber,li.green,tr.red,tr.amber{background:none;font-weight:600}
#overdue th,#overdue td,#at-risk th,#at-risk td{white-space:nowrap}tr.red td,tr.red th{color:#b00020}tr.amber td,tr.amber th{color:#8a5a00}
.trend-growing{color:#b00020;font-weight:600}.trend-shrinking{color:#1b5e20}
</style></head><body>
<div id="banner" role="alert"></div>
<h1>reghub — monitoring of the CTR register</h1>
<p>Updated <span id="updated">–</span> (times in UTC)</p>
<div id="content">
<div id="state" class="amber" role="status" aria-live="polite"><span id="state-words">Waiting for the API</span>
<ul id="reasons"></ul></div>
<h2>Overdue obligations</h2><table id="overdue"></table>
<h2>Obligations at risk</h2><table id="at-risk"></table>
<h2>Lag per topic (asked of the broker)</h2><table id="topic-lag"></table>
<h2>Purchases registered per minute (last 30 full minutes, UTC)</h2>
<svg id="chart" width="680" height="200" viewBox="0 0 680 200" role="img"
 aria-label="purchases registered per minute"></svg>
<h2>Compliance today (<span id="compliance-day">–</span>, Danish date) per reporter</h2>
<table id="compliance"></table>
<div class="grid">
<div><h2>Register</h2><table id="register"></table></div>
<div><h2>Workers</h2><table id="workers"></table></div>
<div><h2>Lag per partition (the workers' own view)</h2><table id="lag"></table></div>
<div><h2>Dead letters by reason</h2><table id="deadletters"></table></div>
<div><h2>Obligations by state</h2><table id="obligations"></table></div>
<div><h2>Missing reports</h2><table id="missing"></table></div>
<div><h2>Treatment places by state</h2><table id="place-states"></table></div>
<div><h2>Treatment places by category</h2><table id="place-categories"></table></div>
<div><h2>Reads of the CTR (§ 5), last 24 hours</h2><table id="reads"></table></div>
</div></div>
<script>
const num = new Intl.NumberFormat('en-GB');
const pad = (v) => String(v).padStart(2, '0');
const time = (iso) => { const d = new Date(iso);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
         `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`; };
const hhmm = (iso) => { const d = new Date(iso); return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`; };
const esc = (s) => String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const rows = (pairs) => pairs.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('');
const n = (v) => typeof v === 'number' ? num.format(v) : esc(v);
const LABELS = {purchases: 'purchases', persons: 'persons', subsidy_granted_kr: 'subsidy granted',
  reports_deviating_from_the_register: 'reports whose subsidy differs from the register',
  parked_reports: 'parked reports (waiting for a scale)', open_balancing_amounts: 'open balancing amounts'};
const TREND = {growing: '↑ growing', shrinking: '↓ shrinking', steady: '→ steady', new: '· first reading'};
function secs(s) { s = Math.round(s);
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h`; }
function chart(points) {
  const full = points.filter(p => !p.partial);
  const W = 680, H = 200, L = 52, R = 24, T = 14, B = 34;
  const top = Math.max(1, ...full.map(p => p.purchases));
  const unit = Math.pow(10, Math.floor(Math.log10(top)));
  const max = [1, 2, 5, 10].map(f => f * unit).find(c => c >= top);  // a round top for the axis
  const x = (i) => L + i * (W - L - R) / Math.max(1, full.length - 1);
  const y = (v) => H - B - v / max * (H - T - B);
  let svg = `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#444"/>` +
            `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#444"/>`;
  for (const v of max % 2 === 0 ? [0, max / 2, max] : [0, max]) {
    svg += `<line x1="${L - 4}" y1="${y(v)}" x2="${W - R}" y2="${y(v)}" stroke="#eee"/>` +
           `<text x="${L - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${num.format(Math.round(v))}</text>`;
  }
  full.forEach((p, i) => { if (i % 5 === 0 || i === full.length - 1) svg +=
    `<line x1="${x(i)}" y1="${H - B}" x2="${x(i)}" y2="${H - B + 4}" stroke="#444"/>` +
    `<text x="${x(i)}" y="${H - B + 16}" font-size="11" text-anchor="middle">${hhmm(p.minute)}</text>`; });
  svg += `<text x="${W - R}" y="${H - 4}" font-size="11" text-anchor="end">minute (UTC)</text>` +
         `<text x="12" y="${T + (H - T - B) / 2}" font-size="11" text-anchor="middle" ` +
         `transform="rotate(-90 12 ${T + (H - T - B) / 2})">purchases / min</text>`;
  const xy = full.map((p, i) => `${x(i)},${y(p.purchases)}`).join(' ');
  document.getElementById('chart').innerHTML = svg +
    `<polyline fill="none" stroke="#1565c0" stroke-width="2" points="${xy}"/>`;
}
function obligationRows(list, level, none, when) {
  return list.length ? list.map(o => `<tr class="${level}"><th>${esc(o.reporter)}: ${esc(o.obligation)}</th>` +
    `<td>${esc(o.kind)}</td><td>${when(o)}</td></tr>`).join('') : rows([[none, '']]);
}
function state(s) {
  const box = document.getElementById('state');
  box.className = s.level;
  box.dataset.level = s.level;
  document.getElementById('state-words').textContent = `${s.level.toUpperCase()}: ${s.words}`;
  document.getElementById('reasons').innerHTML = s.reasons.map(
    r => `<li class="${r.level}">${esc(r.level.toUpperCase())}: ${esc(r.text)}</li>`).join('');
}
async function tick() {
  const banner = document.getElementById('banner'), content = document.getElementById('content');
  let m;
  try {
    const token = new URLSearchParams(location.hash.slice(1)).get('token');
    const r = await fetch('/monitor',
      {cache: 'no-store', headers: token ? {Authorization: 'Bearer ' + token} : {}});
    if (!r.ok) throw new Error('HTTP ' + r.status);
    m = await r.json();
  } catch (e) {
    banner.textContent = 'The API does not answer (' + e.message + '); the figures below are stale.';
    banner.style.display = 'block'; content.classList.add('stale'); return;
  }
  banner.style.display = 'none'; content.classList.remove('stale');
  state(m.state);
  const ob = m.obligations || {by_state: {}, missing: [], overdue: [], at_risk: []};
  document.getElementById('overdue').innerHTML = obligationRows(ob.overdue, 'red', 'none overdue',
    o => `overdue ${secs(-o.seconds_to_due)} (due ${time(o.due)})`);
  document.getElementById('at-risk').innerHTML = obligationRows(ob.at_risk, 'amber', 'none at risk',
    o => `due in ${secs(o.seconds_to_due)} (${time(o.due)})`);
  const lag = m.lag;
  document.getElementById('topic-lag').innerHTML = !lag ? rows([['not asked (no Kafka settings)', '']]) :
    lag.state !== 'ok' ? `<tr class="red"><th>${esc(lag.error || 'asking the broker')}</th><td></td></tr>` :
    '<tr><th>topic</th><th>messages</th><th>seconds</th><th>trend</th></tr>' +
    lag.topics.map(t => `<tr><th>${esc(t.topic)}</th><td>${n(t.messages)}</td><td>${secs(t.seconds)}</td>` +
      `<td class="trend-${t.trend}">${TREND[t.trend] || esc(t.trend)}` +
      `${t.compared_with_seconds_ago ? ' vs ' + t.compared_with_seconds_ago + ' s ago' : ''}</td></tr>`).join('');
  chart(m.rates);
  const comp = m.compliance;
  document.getElementById('compliance-day').textContent = comp ? comp.day : '–';
  document.getElementById('compliance').innerHTML = !comp || !comp.reporters.length ?
    rows([['no obligations today yet', '']]) :
    '<tr><th>reporter</th><th>on time</th><th>late</th><th>missing</th><th>resolved</th><th>worst lateness</th><th>on time %</th></tr>' +
    comp.reporters.map(c => `<tr class="${c.missing ? 'red' : c.late ? 'amber' : ''}"><th>${esc(c.reporter)}</th>` +
      `<td>${n(c.on_time)}</td><td>${n(c.late)}</td><td>${n(c.missing)}</td><td>${n(c.resolved)}</td>` +
      `<td>${secs(c.worst_seconds_late)}</td><td>${c.on_time_pct === null ? '–' : c.on_time_pct + ' %'}</td></tr>`).join('');
  document.getElementById('register').innerHTML = m.register ?
    rows(Object.entries(m.register).map(([k, v]) => [LABELS[k] || k, n(v)])) : rows([['the register does not answer', '']]);
  document.getElementById('workers').innerHTML = m.workers.length ? rows(m.workers.map(w => [w.url,
    w.alive ? `<span class="up">running</span>${w.ready ? '' : ' (not ready: ' + esc(w.problems.join('; ')) + ')'}`
            : '<span class="down">does not answer</span>'])) : rows([['no workers listed', '']]);
  document.getElementById('lag').innerHTML = rows(m.workers.flatMap(w => (w.lag || []).map(
    l => [`${l.topic} / ${l.partition}`, n(l.lag)]))) || rows([['no partitions assigned', '']]);
  const dead = {};
  m.workers.forEach(w => Object.entries(w.dead_letters || {}).forEach(([k, v]) => dead[k] = (dead[k] || 0) + v));
  document.getElementById('deadletters').innerHTML =
    rows(Object.entries(dead).map(([k, v]) => [k, n(v)])) || rows([['none', '0']]);
  document.getElementById('obligations').innerHTML =
    rows(Object.entries(ob.by_state).map(([k, v]) => [k, n(v)])) || rows([['none', '0']]);
  document.getElementById('missing').innerHTML =
    rows(ob.missing.map(o => [`${o.reporter}: ${o.obligation}`, 'due ' + time(o.due)])) || rows([['none', '']]);
  const places = m.places || {by_state: {}, by_category: {}};
  document.getElementById('place-states').innerHTML =
    rows(Object.entries(places.by_state).map(([k, v]) => [k, n(v)])) || rows([['none', '0']]);
  document.getElementById('place-categories').innerHTML =
    rows(Object.entries(places.by_category).map(([k, v]) => ['category ' + k, n(v)])) || rows([['none', '0']]);
  const rd = m.reads || {allowed: {}, refused: {}};
  const reads = [...Object.entries(rd.allowed).map(([k, v]) => [k + ': allowed', n(v)]),
                 ...Object.entries(rd.refused).map(([k, v]) => [k + ': refused', n(v)])];
  document.getElementById('reads').innerHTML = rows(reads) || rows([['none', '0']]);
  document.getElementById('updated').textContent = time(m.at);
}
tick(); setInterval(tick, 2000);
</script></body></html>"""
