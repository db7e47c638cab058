"""The operator's dashboard: one page, refreshed every 2 s from `/monitor`.

Purchases per minute as a chart, the register's aggregates, each worker's liveness and lag per partition,
dead letters by reason, reporting obligations by state and the missing ones, treatment places by state
and category, reads of personal data by role and outcome. Numbers and times in Danish
formats (`da-DK`, Europe/Copenhagen). When the API stops answering, a banner says so and the last figures
stay, marked stale; it goes when the API answers again.
"""

from __future__ import annotations

PAGE = """<!doctype html><html lang="da"><head><meta charset="utf-8"><title>reghub</title>
<style>
body{font:15px system-ui;margin:1.5em;color:#222}h1{font-size:1.4em}h2{font-size:1.1em;margin:1.2em 0 .3em}
table{border-collapse:collapse}td,th{padding:.25em .9em;border-bottom:1px solid #ddd;text-align:right}
th{text-align:left;font-weight:600}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(22em,1fr));gap:1em 2.5em}
#banner{display:none;background:#b00020;color:#fff;padding:.6em 1em;font-weight:600;margin-bottom:1em}
.stale{opacity:.45}.down{color:#b00020;font-weight:600}.up{color:#1b5e20}svg{border:1px solid #ddd}
</style></head><body>
<div id="banner" role="alert"></div>
<h1>reghub — overvågning af CTR-registret</h1>
<p>Opdateret <span id="updated">–</span></p>
<div id="content">
<h2>Køb registreret pr. minut (seneste 30 min.)</h2>
<svg id="chart" width="640" height="160" viewBox="0 0 640 160" aria-label="køb pr. minut"></svg>
<div class="grid">
<div><h2>Registret</h2><table id="register"></table></div>
<div><h2>Workers</h2><table id="workers"></table></div>
<div><h2>Efterslæb pr. partition</h2><table id="lag"></table></div>
<div><h2>Afviste beskeder pr. årsag</h2><table id="deadletters"></table></div>
<div><h2>Indberetningspligter</h2><table id="obligations"></table></div>
<div><h2>Manglende indberetninger</h2><table id="missing"></table></div>
<div><h2>Behandlingssteder pr. tilstand</h2><table id="place-states"></table></div>
<div><h2>Behandlingssteder pr. kategori</h2><table id="place-categories"></table></div>
<div><h2>Opslag i CTR (§ 5), seneste døgn</h2><table id="reads"></table></div>
</div></div>
<script>
const num = new Intl.NumberFormat('da-DK');
const time = (iso) => new Date(iso).toLocaleString('da-DK', {timeZone: 'Europe/Copenhagen'});
const esc = (s) => String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const rows = (pairs) => pairs.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('');
const n = (v) => typeof v === 'number' ? num.format(v) : esc(v);
const LABELS = {purchases: 'køb', persons: 'personer', subsidy_granted_kr: 'tilskud ydet',
  reports_deviating_from_the_register: 'indberetninger med afvigende tilskud',
  parked_reports: 'parkerede indberetninger', open_balancing_amounts: 'åbne udligningsbeløb'};
function chart(points) {
  const max = Math.max(1, ...points.map(p => p.purchases));
  const step = 620 / Math.max(1, points.length - 1);
  const xy = points.map((p, i) => `${10 + i * step},${150 - (p.purchases / max) * 130}`).join(' ');
  document.getElementById('chart').innerHTML =
    `<polyline fill="none" stroke="#1565c0" stroke-width="2" points="${xy}"/>` +
    `<text x="12" y="16" font-size="12">maks. ${num.format(max)} pr. minut</text>`;
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
    banner.textContent = 'API svarer ikke (' + e.message + '); tallene herunder er forældede.';
    banner.style.display = 'block'; content.classList.add('stale'); return;
  }
  banner.style.display = 'none'; content.classList.remove('stale');
  chart(m.rates);
  document.getElementById('register').innerHTML =
    rows(Object.entries(m.register).map(([k, v]) => [LABELS[k] || k, n(v)]));
  document.getElementById('workers').innerHTML = m.workers.length ? rows(m.workers.map(w => [w.url,
    w.alive ? `<span class="up">kører</span>${w.ready ? '' : ' (ikke klar: ' + esc(w.problems.join('; ')) + ')'}`
            : '<span class="down">svarer ikke</span>'])) : rows([['ingen workers angivet', '']]);
  document.getElementById('lag').innerHTML = rows(m.workers.flatMap(w => (w.lag || []).map(
    l => [`${l.topic} / ${l.partition}`, n(l.lag)]))) || rows([['ingen partitioner tildelt', '']]);
  const dead = {};
  m.workers.forEach(w => Object.entries(w.dead_letters || {}).forEach(([k, v]) => dead[k] = (dead[k] || 0) + v));
  document.getElementById('deadletters').innerHTML =
    rows(Object.entries(dead).map(([k, v]) => [k, n(v)])) || rows([['ingen', '0']]);
  document.getElementById('obligations').innerHTML =
    rows(Object.entries(m.obligations.by_state).map(([k, v]) => [k, n(v)])) || rows([['ingen', '0']]);
  document.getElementById('missing').innerHTML =
    rows(m.obligations.missing.map(o => [`${o.reporter}: ${o.obligation}`, 'frist ' + time(o.due)])) ||
    rows([['ingen', '']]);
  document.getElementById('place-states').innerHTML =
    rows(Object.entries(m.places.by_state).map(([k, v]) => [k, n(v)])) || rows([['ingen', '0']]);
  document.getElementById('place-categories').innerHTML =
    rows(Object.entries(m.places.by_category).map(([k, v]) => ['kategori ' + k, n(v)])) ||
    rows([['ingen', '0']]);
  const reads = [...Object.entries(m.reads.allowed).map(([k, v]) => [k + ': givet', n(v)]),
                 ...Object.entries(m.reads.refused).map(([k, v]) => [k + ': afvist', n(v)])];
  document.getElementById('reads').innerHTML = rows(reads) || rows([['ingen', '0']]);
  document.getElementById('updated').textContent = time(m.at);
}
tick(); setInterval(tick, 2000);
</script></body></html>"""
