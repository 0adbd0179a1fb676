// The run page in the browser: fetches the run's data (GET /runs/<id>/data with the page's
// own signature), draws it, and asks again every few seconds until the run is final.
// Every string from the server is put into the DOM as text (textContent), never as markup;
// the only HTML inserted is what the server rendered with markdown-it (raw HTML off) and
// the SVG Mermaid draws with securityLevel 'strict'. No inline script: the page's
// Content-Security-Policy allows scripts from this server only.
/* global mermaid, Chart */
(() => {
  'use strict';

  const app = document.getElementById('app');
  const dataUrl = `${location.pathname.replace(/\/$/, '')}/data${location.search}`;
  let graphSource = null;
  let graphCount = 0;
  let chartsKey = null;

  /** An element with attributes and children; strings become text nodes. */
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function duration(ms) {
    if (ms === null || ms === undefined) return '—';
    if (ms < 1000) return '<1s';
    if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)}s`;
    const s = Math.round(ms / 1000);
    const hh = Math.floor(s / 3600);
    const mm = Math.floor((s % 3600) / 60);
    return hh > 0 ? `${hh}h ${String(mm).padStart(2, '0')}m` : `${mm}m ${String(s % 60).padStart(2, '0')}s`;
  }
  const usd = (n) =>
    n === null || n === undefined ? '—' : n > 0 && n < 0.01 ? `$${n.toFixed(4)}` : `$${n.toFixed(2)}`;
  function bytes(n) {
    if (n < 1024) return `${n} B`;
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i += 1;
    }
    return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
  }
  const state = (s) => h('span', { class: `state state-${s}` }, s);
  const short = (d) => (d && d.startsWith('sha256:') ? `sha256:${d.slice(7, 19)}` : d || '—');

  function header(d) {
    const facts = [
      ['Pipeline', d.pipeline],
      d.repo ? ['Repository', d.repo] : null,
      d.commit ? ['Commit', d.commit.slice(0, 12)] : null,
      d.branch ? ['Branch', d.branch] : null,
      d.trigger ? ['Trigger', d.trigger] : null,
      ['Started', d.startedAt.replace('T', ' ').slice(0, 19) + ' UTC'],
      ['Duration', duration(d.durationMs)],
      ['Cost', usd(d.costUsd)],
    ].filter(Boolean);
    return h(
      'header',
      {},
      h(
        'h1',
        {},
        `${d.pipeline} `,
        state(d.state),
        d.final ? null : h('span', { class: 'live', id: 'live' }, ' · live'),
      ),
      h('div', { class: 'muted mono' }, `run ${d.runId}`),
      h(
        'div',
        { class: 'facts' },
        facts.map(([k, v]) => h('span', {}, h('b', {}, k), v)),
      ),
    );
  }

  function stepTable(d) {
    return h(
      'table',
      { id: 'steps' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Step', 'State', 'Ran / cached', 'Why', 'Duration', 'Cost'].map((t) => h('th', {}, t)),
        ),
      ),
      h(
        'tbody',
        {},
        d.steps.map((s) =>
          h(
            'tr',
            { 'data-step': s.name },
            h('td', { class: 'mono step-name' }, s.name),
            h('td', {}, state(s.state)),
            h('td', {}, s.execution),
            h('td', {}, s.why || '—'),
            h('td', {}, duration(s.durationMs)),
            h('td', {}, usd(s.costUsd)),
          ),
        ),
      ),
    );
  }

  function outputs(d) {
    const rows = d.steps.flatMap((s) =>
      s.outputs.map((o) =>
        h(
          'tr',
          {},
          h('td', { class: 'mono' }, s.name),
          h(
            'td',
            { class: 'mono' },
            o.href
              ? h('a', { href: o.href, class: 'download', download: '' }, o.name)
              : `${o.name} (folder: trainyard get ${d.runId} ${s.name} ${o.name})`,
          ),
          h('td', { class: 'mono', title: o.digest }, short(o.digest)),
          h('td', {}, bytes(o.size)),
        ),
      ),
    );
    if (rows.length === 0) return null;
    return [
      h('h2', {}, 'Outputs'),
      h(
        'table',
        { id: 'outputs' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Step', 'Output', 'Digest', 'Size'].map((t) => h('th', {}, t)),
          ),
        ),
        h('tbody', {}, rows),
      ),
    ];
  }

  function params(d) {
    if (d.params.length === 0) return null;
    return [
      h('h2', {}, 'Parameters'),
      h(
        'table',
        { id: 'params' },
        h(
          'tbody',
          {},
          d.params.map((p) => h('tr', {}, h('td', { class: 'mono' }, p.name), h('td', { class: 'mono' }, p.value))),
        ),
      ),
    ];
  }

  function logs(d, open) {
    return [
      h('h2', {}, 'Logs'),
      h(
        'div',
        { id: 'logs' },
        d.steps.map((s) => {
          const l = s.log;
          const stderr = new Set(l.stderr);
          const note = l.from === 'none' ? '(no log)' : l.from === 'live' ? '(live, so far)' : '';
          const pre = h(
            'pre',
            {},
            l.cutBytes > 0
              ? h(
                  'span',
                  { class: 'muted' },
                  `… ${bytes(l.cutBytes)} before this; the whole log: trainyard logs ${d.runId} ${s.name}\n`,
                )
              : null,
            l.lines.map((line, i) => (stderr.has(i) ? h('span', { class: 'stderr' }, `${line}\n`) : `${line}\n`)),
          );
          return h(
            'details',
            { class: 'log', 'data-step': s.name, open: open.has(s.name) || l.from === 'live' ? '' : null },
            h(
              'summary',
              {},
              h('span', { class: 'mono' }, s.name),
              ' ',
              state(s.state),
              ` ${l.lines.length} lines ${note}`,
            ),
            pre,
          );
        }),
      ),
    ];
  }

  /** Markup the server made with markdown-it (raw HTML off), in a container of its own. */
  function serverHtml(cls, html) {
    const div = h('div', { class: cls });
    div.innerHTML = html;
    return div;
  }

  async function drawGraph(d, box) {
    if (!d.graph) {
      box.append(h('p', { class: 'muted' }, d.graphNote || 'no graph'));
      return;
    }
    graphCount += 1;
    const { svg } = await mermaid.render(`graph-svg-${graphCount}`, d.graph);
    box.innerHTML = svg;
    if (d.graphNote) box.append(h('p', { class: 'muted' }, d.graphNote));
  }

  function drawCharts(d, box) {
    for (const m of d.metrics) {
      const canvas = h('canvas', { 'data-metric': `${m.step}.${m.metric}` });
      box.append(h('div', { class: 'chart' }, h('h3', { class: 'mono' }, `${m.step}: ${m.metric}`), canvas));
      const datasets = [
        {
          label: 'this run',
          data: m.points.map(([x, y]) => ({ x, y })),
          borderColor: '#0969da',
          backgroundColor: '#0969da',
          pointRadius: 2,
          borderWidth: 2,
        },
      ];
      if (m.base)
        datasets.push({
          label: 'base',
          data: m.base.map(([x, y]) => ({ x, y })),
          borderColor: '#8c959f',
          backgroundColor: '#8c959f',
          borderDash: [5, 4],
          pointRadius: 2,
          borderWidth: 2,
        });
      new Chart(canvas, {
        type: 'line',
        data: { datasets },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          scales: {
            x: {
              type: 'linear',
              title: { display: true, text: m.averaged ? 'sample (points average consecutive samples)' : 'sample' },
              ticks: { precision: 0 },
            },
            y: { title: { display: true, text: m.metric } },
          },
          plugins: { legend: { display: true } },
        },
      });
    }
  }

  const openLogs = () =>
    new Set([...document.querySelectorAll('details.log[open]')].map((e) => e.getAttribute('data-step')));

  async function render(d) {
    const open = openLogs();
    // Graph and charts are kept while their data is the same (a poll redraws only the rest).
    const oldGraph = document.getElementById('graph');
    const oldCharts = document.getElementById('charts');
    const key = JSON.stringify(d.metrics);
    document.title = `${d.pipeline} ${d.state} · Trainyard`;
    const graphBox = d.graph === graphSource && oldGraph ? oldGraph : h('div', { id: 'graph' });
    const chartBox = key === chartsKey && oldCharts ? oldCharts : h('div', { id: 'charts', class: 'charts' });
    const fresh = [graphBox !== oldGraph, chartBox !== oldCharts];
    app.replaceChildren(
      ...[
        header(d),
        // The section brings its own heading (the check's text, as GitHub shows it).
        d.comparison ? serverHtml('comparison', d.comparison.html) : null,
        h('h2', {}, 'Steps'),
        stepTable(d),
        h('h2', {}, 'Graph'),
        graphBox,
        d.metrics.length ? h('h2', {}, 'Metrics') : null,
        chartBox,
        outputs(d),
        params(d),
        logs(d, open),
        d.reportHtml
          ? [
              h('h2', {}, 'Report'),
              h(
                'details',
                { class: 'report-box' },
                h('summary', {}, 'The report as posted to the check'),
                serverHtml('report', d.reportHtml),
              ),
            ]
          : null,
      ]
        .flat()
        .filter(Boolean),
    );
    if (fresh[0]) {
      graphSource = d.graph;
      await drawGraph(d, graphBox);
    }
    if (fresh[1]) {
      chartsKey = key;
      drawCharts(d, chartBox);
    }
    app.setAttribute('aria-busy', 'false');
    app.setAttribute('data-final', String(d.final));
  }

  async function load() {
    let d;
    let status = 0;
    try {
      const r = await fetch(dataUrl, { cache: 'no-store', credentials: 'omit' });
      status = r.status;
      if (!r.ok) throw new Error(`the server answered ${r.status}`);
      d = await r.json();
    } catch (err) {
      app.setAttribute('aria-busy', 'false');
      document.getElementById('load-error')?.remove();
      app.prepend(
        h(
          'p',
          { class: 'error', id: 'load-error' },
          `Could not load the run: ${err.message}${status === 404 ? '' : '; trying again'}`,
        ),
      );
      // A server restarting or a network blip: keep what is shown and ask again; an unknown run stays unknown.
      if (status !== 404) setTimeout(load, 10000);
      return;
    }
    await render(d);
    if (!d.final) setTimeout(load, d.pollMs);
  }

  mermaid.initialize({
    startOnLoad: false,
    securityLevel: 'strict',
    theme: 'default',
    flowchart: { htmlLabels: false },
  });
  load();
})();
