const FIGURES = JSON.parse(document.getElementById('report-figures').textContent);
const TRIALS = JSON.parse(document.getElementById('report-trials').textContent);
const CONFIG = JSON.parse(document.getElementById('report-config').textContent);

function showTrial(number) {
  const detail = TRIALS[number];
  if (!detail) return;
  const panel = document.getElementById('detail');
  panel.querySelector('h2').textContent = 'Trial #' + number + (detail.on_front ? ' (on the Pareto front)' : '');
  panel.querySelector('pre').textContent = JSON.stringify(detail, null, 2);
  panel.hidden = false;
  document.querySelectorAll('#trials tr.selected').forEach(row => row.classList.remove('selected'));
  const row = document.querySelector('#trials tr[data-trial="' + number + '"]');
  if (row) row.classList.add('selected');
}

function sortBy(th) {
  const table = th.closest('table');
  const column = Array.from(th.parentNode.children).indexOf(th);
  const direction = th.dataset.dir === 'asc' ? 'desc' : 'asc';
  table.querySelectorAll('th').forEach(other => delete other.dataset.dir);
  th.dataset.dir = direction;
  const numeric = th.dataset.type === 'num';
  const sign = direction === 'asc' ? 1 : -1;
  const key = row => row.cells[column].dataset.v;
  const rows = Array.from(table.tBodies[0].rows);
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === '' || y === '') return (x === '') - (y === '');  // blanks last either way
    return sign * (numeric ? Number(x) - Number(y) : x.localeCompare(y));
  });
  table.tBodies[0].append(...rows);
}

function frontPointsDrawn(gd) {
  const index = gd.data.findIndex(trace => trace.meta === 'front');
  const groups = gd.querySelectorAll('.scatterlayer .trace');
  if (index < 0 || !groups[index]) return 0;
  return groups[index].querySelectorAll('path.point').length;
}

document.querySelectorAll('#trials th').forEach(th => th.addEventListener('click', () => sortBy(th)));
document.querySelector('#trials tbody').addEventListener('click', event => {
  const row = event.target.closest('tr');
  if (row) showTrial(Number(row.dataset.trial));
});
document.querySelector('#detail button').addEventListener('click', () => { document.getElementById('detail').hidden = true; });

const started = performance.now();
Promise.all(Object.entries(FIGURES).map(([id, figure]) =>
  Plotly.newPlot(id, figure.data, figure.layout, CONFIG).then(gd => {
    gd.on('plotly_click', event => {
      const number = event.points && event.points[0] && event.points[0].customdata;
      if (number !== undefined && number !== null) showTrial(number);
    });
    return gd;
  })
)).then(() => {
  const front = document.getElementById('pareto-0');
  document.body.dataset.frontPoints = front ? frontPointsDrawn(front) : 0;
  document.body.dataset.frontTrials = front ? (front.data.find(t => t.meta === 'front') || {customdata: []}).customdata.join(',') : '';
  document.body.dataset.renderMs = Math.round(performance.now() - started);
  document.body.dataset.rendered = 'true';
}).catch(error => {
  document.body.dataset.renderError = String(error);
  console.error(error);
});
