/**
 * Medians, targets, report.md and ratios.svg from the run records.
 */
import { METRIC } from './cases.mjs';

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

const nf0 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const fmt = (x, digits = 0) =>
  x === undefined || x === null || Number.isNaN(x) ? '–' : digits === 0 ? nf0.format(x) : x.toFixed(digits);
const ratioFmt = (x) => (x === undefined ? '–' : `${x.toFixed(2)}×`);

/** The metric a record contributes for its case. */
function metricOf(kase, res) {
  if (!res) return undefined;
  if (kase.metric === 'connRate') return res.conn_per_s;
  if (kase.metric === 'p99') return res.latency_us?.p99 / 1000;
  return res.recv_per_s;
}

/** Per (case, broker): the final records, the kept ones and their medians. */
export function summarize(cases, records) {
  const rows = [];
  for (const c of cases) {
    for (const b of [...c.brokers, ...Object.keys(c.naBrokers)]) {
      if (c.naBrokers[b]) {
        rows.push({ kase: c, broker: b, na: c.naBrokers[b] });
        continue;
      }
      const finals = records.filter((r) => r.case === c.name && r.broker === b && !r.superseded);
      // generator-bound runs are left out of the medians; in connection cases only out of the numbers the
      // generator can limit (conn/s, handshake latency, broker CPU), not out of memory and connected counts
      const ok = finals.filter((r) => r.status === 'ok');
      const kept = c.kind === 'conn' ? ok : ok.filter((r) => !r.flags.includes('gen-bound'));
      const withResult = finals.filter((r) => r.result);
      const res = kept.map((r) => r.result);
      const rateRes = ok.filter((r) => !r.flags.includes('gen-bound')).map((r) => r.result);
      const row = {
        kase: c,
        broker: b,
        finals,
        kept,
        total: finals.length,
        failed: finals.filter((r) => r.status !== 'ok').length,
        noisy: finals.filter((r) => r.flags.includes('noisy')).length,
        genBound: finals.filter((r) => r.flags.includes('gen-bound')).length,
        busyStart: finals.filter((r) => r.flags.includes('busy-start')).length,
        backlog: finals.filter((r) => r.flags.includes('backlog')).length,
        repeats: records.filter((r) => r.case === c.name && r.broker === b && r.superseded).length,
        metric: median(rateRes.map((r) => metricOf(c, r))),
        // the main number of the generator-bound runs, shown (not used) when no run was kept
        excludedMetric: median(ok.filter((r) => r.flags.includes('gen-bound')).map((r) => metricOf(c, r.result))),
      };
      if (c.kind === 'conn') {
        row.p50 = median(rateRes.map((r) => r.handshake_ms?.p50));
        row.p99 = median(rateRes.map((r) => r.handshake_ms?.p99));
        row.cpu = median(rateRes.map((r) => r.broker_cpu_connect_pct));
        row.rssPeak = median(res.map((r) => r.broker_rss_kb?.peak / 1024));
        row.kbPerConn = median(res.map((r) => r.broker_kb_per_conn));
        row.connPerS = median(rateRes.map((r) => r.conn_per_s));
        row.connected = median(res.map((r) => r.connected));
        row.connFailed = median(res.map((r) => r.failed));
        if (c.serveCheck) row.serve = finals.map((r) => r.serve?.ok === true);
      } else {
        row.msgs = median(res.map((r) => r.recv_per_s));
        row.p50 = median(res.map((r) => r.latency_us?.p50 / 1000));
        row.p99 = median(res.map((r) => r.latency_us?.p99 / 1000));
        row.cpu = median(res.map((r) => r.broker_cpu_pct));
        row.rssPeak = median(res.map((r) => r.broker_rss_kb?.peak / 1024));
        row.losses = withResult.map((r) => r.result.lost);
        if (c.kind === 'egress') row.offered = median(res.map((r) => r.pub_per_s));
      }
      rows.push(row);
    }
  }
  // ratios rmqtt-ts / other on the primary metric (for p99, other / rmqtt-ts would read "times faster";
  // keep rmqtt-ts / other everywhere, and say which direction is better)
  for (const row of rows) {
    if (row.broker !== 'rmqtt-ts' || row.na) continue;
    for (const other of ['mosquitto', 'aedes']) {
      const o = rows.find((r) => r.kase.name === row.kase.name && r.broker === other && !r.na);
      if (o?.metric > 0 && row.metric !== undefined) row[`vs_${other}`] = row.metric / o.metric;
    }
  }
  return rows;
}

const find = (rows, kase, broker) => rows.find((r) => r.kase.name === kase && r.broker === broker);

/** Why a row has no median ('' when it has one). */
function whyMissing(row, broker) {
  if (!row?.total) return `${broker} not run; `;
  if (row.metric !== undefined) return '';
  const why = [];
  if (row.genBound) why.push(`${row.genBound} generator-bound${row.excludedMetric !== undefined ? ` (${fmt(row.excludedMetric)} msgs/s, left out)` : ''}`);
  if (row.failed) why.push(`${row.failed} failed`);
  return `${broker} kept 0/${row.total} runs: ${why.join(', ')}; `;
}

/** Target checks: [{ target, value, result }] with result PASS | FAIL | n/a | no data | not run. */
export function targets(rows, { longSeconds }) {
  const out = [];
  const add = (target, value, pass) => out.push({ target, value, result: pass === undefined ? 'not run' : pass ? 'PASS' : 'FAIL' });
  for (const name of ['B', 'C', 'D', 'E20', 'F']) {
    const r = find(rows, name, 'rmqtt-ts');
    for (const [other, min] of [
      ['mosquitto', 1.0],
      ['aedes', 1.5],
    ]) {
      const o = find(rows, name, other);
      if (o?.na) {
        add(`${name} msgs/s ≥ ${min.toFixed(1)}× ${other}`, `n/a: ${o.na}`, undefined);
        out[out.length - 1].result = 'n/a';
        continue;
      }
      const ratio = r?.[`vs_${other}`];
      if (ratio === undefined && r?.total && o?.total) {
        add(`${name} msgs/s ≥ ${min.toFixed(1)}× ${other}`, `no median: ${whyMissing(r, 'rmqtt-ts')}${whyMissing(o, other)}`.replace(/; $/, ''), undefined);
        out[out.length - 1].result = 'no data';
        continue;
      }
      add(`${name} msgs/s ≥ ${min.toFixed(1)}× ${other}`, ratio === undefined ? '–' : `${fmt(r.metric)} vs ${fmt(o.metric)} = ${ratioFmt(ratio)}`, ratio === undefined ? undefined : ratio >= min);
    }
  }
  {
    const r = find(rows, 'A', 'rmqtt-ts');
    const o = find(rows, 'A', 'mosquitto');
    const ratio = r?.vs_mosquitto;
    add('A conn/s ≥ 1.0× mosquitto', ratio === undefined ? '–' : `${fmt(r.connPerS)} vs ${fmt(o.connPerS)} = ${ratioFmt(ratio)}`, ratio === undefined ? undefined : ratio >= 1.0);
    if (ratio === undefined && r?.total && o?.total) {
      out[out.length - 1].value = `no median: ${whyMissing(r, 'rmqtt-ts')}${whyMissing(o, 'mosquitto')}`.replace(/msgs\/s/g, 'conn/s').replace(/; $/, '');
      out[out.length - 1].result = 'no data';
    }
  }
  {
    const r = find(rows, 'A19k', 'rmqtt-ts');
    const v = r?.kbPerConn;
    add('A19k ≤ 8 KB per idle connection at 19,000 connections', v === undefined ? '–' : `${fmt(v, 2)} KB/conn (${fmt(r.connected)} connected)`, v === undefined ? undefined : v <= 8 && r.connected >= 19000);
  }
  {
    const r = find(rows, 'C30', 'rmqtt-ts');
    const o = find(rows, 'C30', 'mosquitto');
    const ok = r?.p99 !== undefined && o?.p99 !== undefined;
    add("C30 p99 ≤ mosquitto's", ok ? `${fmt(r.p99, 1)} ms vs ${fmt(o.p99, 1)} ms` : '–', ok ? r.p99 <= o.p99 : undefined);
  }
  {
    const r = find(rows, 'B-long', 'rmqtt-ts');
    const lr = r?.finals?.find((x) => x.long)?.long;
    const early = lr?.early;
    const late = lr?.late;
    const ok = early?.rss_kb > 0 && late?.rss_kb > 0;
    const ratio = ok ? late.rss_kb / early.rss_kb : undefined;
    add(
      `long B (${longSeconds} s): broker RSS at the end within 10% of RSS at ${early ? early.t : Math.max(10, Math.round(longSeconds / 100) * 10)} s`,
      ok ? `${fmt(early.rss_kb / 1024, 1)} MB at ${early.t} s → ${fmt(late.rss_kb / 1024, 1)} MB at ${late.t} s = ${ratioFmt(ratio)}` : '–',
      ok ? Math.abs(ratio - 1) <= 0.1 : undefined,
    );
  }
  {
    const parts = [];
    let all = true;
    let any = false;
    for (const name of ['B', 'C', 'C30', 'D', 'E20', 'F']) {
      const r = find(rows, name, 'rmqtt-ts');
      if (!r?.losses?.length) continue;
      any = true;
      const lost = r.losses.reduce((a, b) => a + Math.abs(b), 0);
      const incomplete = r.failed > 0;
      if (lost !== 0 || incomplete) all = false;
      parts.push(`${name} ${r.losses.join('/')}${incomplete ? ` (${r.failed} failed run${r.failed > 1 ? 's' : ''})` : ''}`);
    }
    add('zero loss (rmqtt-ts) in B, C, C30, D, E20, F', parts.join('; ') || '–', any ? all : undefined);
  }
  {
    const r = find(rows, 'B', 'rmqtt-ts');
    const n = find(rows, 'B-noplugins', 'rmqtt-ts');
    const ok = r?.msgs > 0 && n?.msgs > 0;
    const cost = ok ? 1 - r.msgs / n.msgs : undefined;
    add('default plugins cost ≤ 10% (B vs B-noplugins, rmqtt-ts)', ok ? `${fmt(r.msgs)} vs ${fmt(n.msgs)} msgs/s = ${(cost * 100).toFixed(1)}% cost` : '–', ok ? cost <= 0.1 : undefined);
    const a = find(rows, 'B-auth', 'rmqtt-ts');
    const okA = a?.msgs > 0 && n?.msgs > 0;
    const costA = okA ? 1 - a.msgs / n.msgs : undefined;
    add('default plugins + acl + auth-http (answer cache) cost ≤ 10% (B-auth vs B-noplugins, rmqtt-ts)', okA ? `${fmt(a.msgs)} vs ${fmt(n.msgs)} msgs/s = ${(costA * 100).toFixed(1)}% cost` : '–', okA ? costA <= 0.1 : undefined);
  }
  {
    const r = find(rows, 'A50k', 'rmqtt-ts');
    const s = r?.serve;
    add(
      'A50k storm → rmqtt-ts still serves (pub/sub afterwards)',
      s?.length ? `${s.filter(Boolean).length}/${s.length} runs served; ${fmt(r.connected)} connected / ${fmt(r.connFailed)} failed (median)` : '–',
      s?.length ? s.every(Boolean) : undefined,
    );
  }
  return out;
}

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Bar chart of rmqtt-ts/mosquitto and rmqtt-ts/aedes per throughput case, lines at 1.0 and 1.5. */
export function ratiosSvg(rows, cases) {
  const names = cases.filter((c) => c.throughput).map((c) => c.name);
  const data = names.map((n) => ({
    n,
    m: find(rows, n, 'rmqtt-ts')?.vs_mosquitto,
    a: find(rows, n, 'rmqtt-ts')?.vs_aedes,
    naM: !!find(rows, n, 'mosquitto')?.na,
    naA: !!find(rows, n, 'aedes')?.na,
  }));
  const W = 720;
  const H = 340;
  const L = 50;
  const R = 130; // right margin: the target lines' labels
  const T = 40;
  const B = 50;
  const max = Math.max(2, ...data.flatMap((d) => [d.m ?? 0, d.a ?? 0]).map((x) => x * 1.1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const gw = names.length ? (W - L - R) / names.length : W - L - R;
  const bw = Math.min(40, gw / 3);
  const parts = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">rmqtt-ts throughput ÷ other broker (median msgs/s)</text>`);
  // axis and grid
  const step = max > 4 ? 1 : 0.5;
  for (let v = 0; v <= max + 1e-9; v += step) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`);
    parts.push(`<text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${v.toFixed(1)}</text>`);
  }
  parts.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#333"/>`);
  parts.push(`<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/>`);
  data.forEach((d, i) => {
    const x0 = L + gw * i + gw / 2 - bw;
    for (const [k, v, color, label, na] of [
      [0, d.m, '#4c78a8', 'mosquitto', d.naM],
      [1, d.a, '#f58518', 'aedes', d.naA],
    ]) {
      const x = x0 + k * bw;
      if (v === undefined) {
        parts.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${H - B - 6}" text-anchor="middle" fill="#999" font-size="10">${na ? 'n/a' : '–'}</text>`);
        continue;
      }
      parts.push(`<rect x="${(x + 2).toFixed(1)}" y="${y(v).toFixed(1)}" width="${(bw - 4).toFixed(1)}" height="${(H - B - y(v)).toFixed(1)}" fill="${color}"><title>${esc(`${d.n} vs ${label}: ${v.toFixed(2)}×`)}</title></rect>`);
      parts.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${(y(v) - 4).toFixed(1)}" text-anchor="middle" font-size="10">${v.toFixed(2)}</text>`);
    }
    parts.push(`<text x="${(L + gw * i + gw / 2).toFixed(1)}" y="${H - B + 18}" text-anchor="middle">${esc(d.n)}</text>`);
  });
  for (const [v, color, label] of [
    [1.0, '#4c78a8', '1.0: mosquitto target'],
    [1.5, '#f58518', '1.5: aedes target'],
  ]) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="${color}" stroke-dasharray="6 4" stroke-width="1.5"/>`);
    parts.push(`<text x="${W - R + 6}" y="${(y(v) + 4).toFixed(1)}" fill="${color}" font-size="11">${label}</text>`);
  }
  // legend
  parts.push(`<rect x="${L + 10}" y="${H - 22}" width="12" height="12" fill="#4c78a8"/><text x="${L + 27}" y="${H - 12}">rmqtt-ts / mosquitto</text>`);
  parts.push(`<rect x="${L + 170}" y="${H - 22}" width="12" height="12" fill="#f58518"/><text x="${L + 187}" y="${H - 12}">rmqtt-ts / aedes</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function runsCell(row) {
  const notes = [];
  if (row.noisy) notes.push(`${row.noisy} noisy`);
  if (row.genBound) notes.push(`${row.genBound} generator-bound${row.kase.kind === 'conn' ? ': left out of conn/s, latency and CPU' : ''}`);
  if (row.failed) notes.push(`${row.failed} failed`);
  if (row.busyStart) notes.push(`${row.busyStart} started on a busy host`);
  if (row.backlog) notes.push(`${row.backlog} with a growing backlog`);
  if (row.repeats) notes.push(`${row.repeats} noisy attempt${row.repeats > 1 ? 's' : ''} repeated`);
  return `${row.kept.length}/${row.total}${notes.length ? ` (${notes.join(', ')})` : ''}`;
}

function lossCell(row) {
  // egress: the offered rate (publishers on the measured broker) beside what reached the remote
  if (row.kase.kind === 'egress') return row.offered === undefined ? '–' : `offered ${fmt(row.offered)}/s`;
  if (!row.losses) return '–';
  if (row.losses.length === 0) return '–';
  return row.losses.every((x) => x === 0) ? '0' : row.losses.map((x) => fmt(x)).join(' / ');
}

function ratioCell(row, other) {
  const v = row[`vs_${other}`];
  if (v === undefined) return '–';
  const m = METRIC[row.kase.metric];
  return `${ratioFmt(v)}${m.higherIsBetter ? '' : ' ↓'}${row.kase.metric === 'throughput' ? '' : ` (${m.label})`}`;
}

/** report.md */
export function reportMarkdown({ env, opts, started, finished, overrides, commands, cases, rows, targetRows, records, interrupted, notes }) {
  const L = [];
  L.push(`# rmqtt-ts benchmark — ${started.toISOString().slice(0, 10)}`);
  L.push('');
  L.push(
    `${opts.quick ? '**Quick run** (one run per case, `-d 5`, `--hold 2`): for checking a change, not for quoting. ' : ''}` +
      `Started ${started.toISOString()}, finished ${finished.toISOString()}${interrupted ? ' — **interrupted**, partial results' : ''}. ` +
      `Options: \`${opts.argv.join(' ') || '(none)'}\`.`,
  );
  L.push('');
  L.push('Baselines and method: `../shared/tools/mqbench/BASELINES.md`. Speed is shown here, never asserted in timed tests.');
  L.push('');
  if (notes.length) {
    L.push('Notes:');
    for (const n of notes) L.push(`* ${n}`);
    L.push('');
  }
  L.push('## Environment');
  L.push('');
  L.push('| item | value |');
  L.push('| --- | --- |');
  L.push(`| CPU | ${env.cpu} |`);
  L.push(`| nproc | ${env.nproc} |`);
  L.push(`| memory | ${env.memory} |`);
  L.push(`| kernel | ${env.kernel} |`);
  L.push(`| RLIMIT_NOFILE (hard) | ${env.nofile} |`);
  L.push(`| Node.js | ${env.node} |`);
  L.push(`| mosquitto | ${env.mosquitto} |`);
  L.push(`| aedes | ${env.aedes} |`);
  L.push(`| mqbench | ${env.mqbench} (built with \`make\` in bench/.build/) |`);
  L.push('');
  L.push('## rmqtt-ts configuration overrides');
  L.push('');
  L.push('`configs/rmqtt.toml` (shipped) layered with `bench/rmqtt-bench.toml`; these are all the keys the bench file sets, and the plugin settings it sets by environment variable:');
  L.push('');
  L.push('| key | bench value | shipped value |');
  L.push('| --- | --- | --- |');
  for (const o of overrides) L.push(`| \`${o.key}\` | \`${o.value}\` | \`${o.shipped ?? '(unset)'}\` |`);
  L.push('');
  L.push('## Command lines');
  L.push('');
  L.push('Every run starts a fresh broker on a free loopback port and stops it afterwards (SIGTERM, then SIGKILL after 5 s). mqbench gets the broker\'s own pid (`exec` keeps the shell\'s pid).');
  L.push('');
  L.push('```sh');
  for (const c of commands.brokers) L.push(`# ${c.label}\n${c.command}`);
  L.push('```');
  L.push('');
  L.push('mosquitto config (`<port>` is the run\'s free port):');
  L.push('');
  L.push('```');
  L.push(commands.mosquittoConf.trimEnd());
  L.push('```');
  L.push('');
  L.push('mqbench (`$PORT`, `$BROKER_PID` filled in per run):');
  L.push('');
  L.push('```sh');
  for (const c of commands.cases) L.push(`# ${c.name}: ${c.title}\n${c.command}`);
  L.push('```');
  L.push('');
  L.push('## Results');
  L.push('');
  L.push(
    'Medians over the kept runs. Pub/sub: msgs/s is the subscribers\' receive rate in the measured window, latency is end to end, CPU is the broker\'s during the window (% of one core). ' +
      'Connection cases: latency is the handshake (connect → CONNACK), CPU is the broker\'s during the connect phase. ' +
      'Ratios are rmqtt-ts ÷ the other broker on the case\'s main number: msgs/s, conn/s for A cases, p99 latency for C30 (↓: lower is better).',
  );
  L.push('');
  L.push('| case | broker | msgs/s (median) | loss | latency p50/p99 ms | broker CPU % | broker RSS peak MB | KB/conn (A cases) | conn/s (A) | runs kept/total | ratio rmqtt-ts/mosquitto | ratio rmqtt-ts/aedes |');
  L.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    if (r.na) {
      L.push(`| ${r.kase.name} | ${r.broker} | n/a | | | | | | | ${esc(r.na)} | | |`);
      continue;
    }
    const conn = r.kase.kind === 'conn';
    const lat = r.p50 === undefined ? '–' : `${fmt(r.p50, 1)} / ${fmt(r.p99, 1)}`;
    const extra = [];
    if (conn && r.connected !== undefined) extra.push(`${fmt(r.connected)} connected, ${fmt(r.connFailed)} failed`);
    if (r.serve?.length) extra.push(`serves after: ${r.serve.map((s) => (s ? 'yes' : 'NO')).join('/')}`);
    const connCell = conn ? `${fmt(r.connPerS)}${extra.length ? ` (${extra.join('; ')})` : ''}` : '–';
    L.push(
      `| ${r.kase.name} | ${r.broker} | ${conn ? '–' : r.msgs === undefined && r.excludedMetric !== undefined ? `– (${fmt(r.excludedMetric)}, generator-bound)` : fmt(r.msgs)} | ${lossCell(r)} | ${lat} | ${fmt(r.cpu)} | ${fmt(r.rssPeak, 1)} | ${conn ? fmt(r.kbPerConn, 2) : '–'} | ${connCell} | ${runsCell(r)} | ${r.broker === 'rmqtt-ts' ? ratioCell(r, 'mosquitto') : ''} | ${r.broker === 'rmqtt-ts' ? ratioCell(r, 'aedes') : ''} |`,
    );
  }
  L.push('');
  L.push('![ratios](ratios.svg)');
  L.push('');
  L.push('## Targets');
  L.push('');
  if (opts.quick || opts.runs < 3) {
    L.push(`Each number below comes from ${opts.runs === 1 ? 'a single run' : `${opts.runs} runs`}: differences of 10–30% between runs are common on this machine (B against B-noplugins in particular), so rerun a case with \`--runs 3 --only …\` before trusting a PASS or FAIL.`);
    L.push('');
  }
  L.push('| target | numbers | result |');
  L.push('| --- | --- | --- |');
  for (const t of targetRows) L.push(`| ${t.target} | ${t.value} | ${t.result === 'PASS' ? 'PASS' : t.result === 'FAIL' ? '**FAIL**' : t.result} |`);
  L.push('');
  const longRec = records.find((r) => r.long && !r.superseded);
  if (longRec) {
    L.push('## Long run: broker RSS over time');
    L.push('');
    L.push(`VmRSS of the rmqtt-ts process every 10 s from the start of mqbench (connect, 2 s warm-up, ${longRec.long.duration_s} s measured, drain).`);
    L.push('');
    L.push('| t (s) | RSS MB |');
    L.push('| --- | --- |');
    for (const s of longRec.long.samples) L.push(`| ${s.t} | ${fmt(s.rss_kb / 1024, 1)} |`);
    L.push('');
  }
  L.push('## All runs');
  L.push('');
  L.push(`In run order. A run is **noisy** when other processes used more than 20% of a core (\`others_cpu_pct\`; for connection cases the harness computes it the same way from /proc over the whole mqbench run); it is repeated up to twice, then kept and flagged. A run whose generator used more than 90% of a core (\`gen_cpu_pct\`; \`gen_cpu_connect_pct\` in connection cases) is **generator-bound** and left out of the medians (in connection cases only out of conn/s, handshake latency and broker CPU: the memory numbers do not depend on the generator's speed). **backlog**: the publishers (× fan-out) sent more than 5% more than the subscribers received in the measured window, so the broker's queues (and latency, and RSS) grew during the run: the msgs/s is not a steady state. "busy start": the host was still ≥ 20% busy after ${opts.idleTimeout} s of waiting.`);
  L.push('');
  L.push('| # | case | broker | run | attempt | status | main number | others CPU % | mqbench CPU % | broker CPU % | flags | raw |');
  L.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  records.forEach((r, i) => {
    const kase = cases.find((c) => c.name === r.case);
    const main = r.result ? (kase.kind === 'conn' ? `${fmt(r.result.conn_per_s)} conn/s, ${fmt(r.result.connected)} conn, ${fmt(r.result.broker_kb_per_conn, 2)} KB/conn` : `${fmt(r.result.recv_per_s)} msgs/s, lost ${fmt(r.result.lost)}, p99 ${fmt(r.result.latency_us?.p99 / 1000, 1)} ms`) : '–';
    const flags = [...r.flags, ...(r.superseded ? ['repeated'] : [])].join(', ');
    L.push(`| ${i + 1} | ${r.case} | ${r.broker} | ${r.run} | ${r.attempt} | ${r.status === 'ok' ? 'ok' : `**${r.status}**: ${esc(r.reason ?? '')}`} | ${main} | ${fmt(r.others_cpu_pct)} | ${fmt(r.gen_cpu_pct)} | ${fmt(r.broker_cpu_pct)} | ${flags} | raw/${r.tag}.* |`);
  });
  L.push('');
  const failed = records.filter((r) => r.status !== 'ok' || (r.serve && !r.serve.ok));
  if (failed.length) {
    L.push('## Failures');
    L.push('');
    for (const r of failed) {
      L.push(`### ${r.case} / ${r.broker} / run ${r.run} attempt ${r.attempt}: ${esc(r.status === 'ok' ? 'serve check failed' : r.reason)}`);
      L.push('');
      if (r.serve && !r.serve.ok) L.push(`Serve check: ${esc(r.serve.reason ?? '')}`);
      for (const [label, text] of [
        ['mqbench stderr (tail)', r.stderrTail],
        ['mqbench stdout (tail)', r.stdoutTail],
        ['serve check output (tail)', r.serve && !r.serve.ok ? r.serve.tail : ''],
        ['broker log (tail)', r.brokerLogTail],
      ]) {
        if (!text) continue;
        L.push(`${label}:`);
        L.push('');
        L.push('```');
        L.push(text);
        L.push('```');
        L.push('');
      }
    }
  }
  L.push('## Reading this report');
  L.push('');
  L.push('* Every number comes from the RESULT lines in raw/results.jsonl (one line per attempt, with the harness\'s own readings), next to each run\'s mqbench output and broker log.');
  L.push('* On this 2-core machine the broker, mqbench and everything else share the CPU: check the "others CPU %" column before trusting a difference, and compare medians, not single runs (mosquitto QoS 0 is bimodal, see BASELINES.md).');
  L.push('* KB/conn is user-space RSS growth per connection (end of hold − before) ÷ connected; kernel socket buffers are not included.');
  L.push('');
  return `${L.join('\n')}\n`;
}
