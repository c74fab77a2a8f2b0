import type { CurvePoint, Stats } from '../api';
import { count, percent, seconds } from '../format';

export function ChartsView(props: { stats: Stats | null }) {
  const { stats } = props;
  if (!stats) {
    return (
      <section className="charts-view" aria-labelledby="charts-title">
        <h1 id="charts-title">Model quality</h1>
        <p className="loading" role="status">
          Loading statistics…
        </p>
      </section>
    );
  }
  const c = stats.counts;
  return (
    <section className="charts-view" aria-labelledby="charts-title" data-testid="charts-view">
      <h1 id="charts-title">Model quality</h1>
      <dl className="summary">
        <div>
          <dt>Human labels</dt>
          <dd>
            {count(c.labelled)} ({count(c.train)} train, {count(c.test)} test)
          </dd>
        </div>
        <div>
          <dt>Confirmed from batches</dt>
          <dd>{count(c.model_labelled)}</dd>
        </div>
        <div>
          <dt>Unlabelled</dt>
          <dd>{count(c.unlabelled)}</dd>
        </div>
        <div>
          <dt>Skipped</dt>
          <dd>{count(c.skipped_items)}</dd>
        </div>
        <div>
          <dt>Median time per label</dt>
          <dd>{seconds(stats.median_seconds_per_label)}</dd>
        </div>
      </dl>

      <div className="charts-grid">
        <figure className="card">
          <figcaption>
            <h2>Accuracy vs labels</h2>
            <p className="muted">Measured on held-out test items; the band is the 95 % interval.</p>
          </figcaption>
          <LearningCurve points={stats.curve} />
        </figure>

        <figure className="card">
          <figcaption>
            <h2>Confusion matrix</h2>
            <p className="muted">Test items: rows are the true class, columns what the model predicted.</p>
          </figcaption>
          {stats.confusion ? (
            <Confusion classes={stats.confusion.classes} matrix={stats.confusion.matrix} />
          ) : (
            <p className="muted">Appears after the first model has test labels to score.</p>
          )}
        </figure>

        <figure className="card">
          <figcaption>
            <h2>Per class</h2>
          </figcaption>
          {stats.per_class.length > 0 ? (
            <table className="data-table" data-testid="per-class">
              <thead>
                <tr>
                  <th scope="col">Class</th>
                  <th scope="col">Precision</th>
                  <th scope="col">Recall</th>
                  <th scope="col">Test labels</th>
                </tr>
              </thead>
              <tbody>
                {stats.per_class.map((row) => (
                  <tr key={row.class}>
                    <th scope="row">{row.class}</th>
                    <td>{percent(row.precision)}</td>
                    <td>{percent(row.recall)}</td>
                    <td>{row.support}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p className="muted">Appears after the first model.</p>
          )}
        </figure>
      </div>
    </section>
  );
}

const W = 720;
const H = 340;
const PAD = { left: 52, right: 16, top: 14, bottom: 42 };

function niceStep(max: number, ticks: number): number {
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

export function LearningCurve(props: { points: CurvePoint[] }) {
  const points = [...props.points].sort((a, b) => a.labels - b.labels);
  if (points.length === 0) {
    return <p className="muted">The curve starts once there are test labels and a first model.</p>;
  }
  const maxX = Math.max(10, ...points.map((p) => p.labels));
  const step = Math.max(1, niceStep(maxX, 6));
  const xMax = Math.ceil(maxX / step) * step;
  const x = (v: number) => PAD.left + (v / xMax) * (W - PAD.left - PAD.right);
  const y = (v: number) => PAD.top + (1 - v) * (H - PAD.top - PAD.bottom);
  const xTicks: number[] = [];
  for (let t = 0; t <= xMax; t += step) xTicks.push(t);
  const yTicks = [0, 0.25, 0.5, 0.75, 1];
  const band = [
    ...points.map((p) => `${x(p.labels)},${y(p.high)}`),
    ...[...points].reverse().map((p) => `${x(p.labels)},${y(p.low)}`),
  ].join(' ');
  const line = points.map((p) => `${x(p.labels)},${y(p.accuracy)}`).join(' ');
  const last = points[points.length - 1]!;

  return (
    <>
      <svg
        className="curve"
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-labelledby="curve-title"
        data-testid="learning-curve"
      >
        <title id="curve-title">
          {`Accuracy vs number of labels: ${percent(last.accuracy)} (${percent(last.low)}–${percent(last.high)}) at ${last.labels} labels`}
        </title>
        {yTicks.map((t) => (
          <g key={`y${t}`} className="curve__grid">
            <line x1={PAD.left} x2={W - PAD.right} y1={y(t)} y2={y(t)} />
            <text x={PAD.left - 8} y={y(t)} textAnchor="end" dominantBaseline="middle">
              {percent(t)}
            </text>
          </g>
        ))}
        {xTicks.map((t) => (
          <g key={`x${t}`} className="curve__grid">
            <line x1={x(t)} x2={x(t)} y1={PAD.top} y2={H - PAD.bottom} />
            <text x={x(t)} y={H - PAD.bottom + 16} textAnchor="middle">
              {t}
            </text>
          </g>
        ))}
        <text className="curve__axis-label" x={(PAD.left + W - PAD.right) / 2} y={H - 6} textAnchor="middle">
          labels
        </text>
        <polygon className="curve__band" points={band} />
        <polyline className="curve__line" points={line} />
        {points.map((p) => (
          <circle key={p.labels} className="curve__point" cx={x(p.labels)} cy={y(p.accuracy)} r={3.5}>
            <title>{`${p.labels} labels: ${percent(p.accuracy, 1)} (${percent(p.low)}–${percent(p.high)}, ${p.test_labels} test labels)`}</title>
          </circle>
        ))}
      </svg>
      <details className="curve__data">
        <summary>Data</summary>
        <table className="data-table">
          <thead>
            <tr>
              <th scope="col">Labels</th>
              <th scope="col">Accuracy</th>
              <th scope="col">95 % interval</th>
              <th scope="col">Test labels</th>
            </tr>
          </thead>
          <tbody>
            {points.map((p) => (
              <tr key={p.labels}>
                <td>{p.labels}</td>
                <td>{percent(p.accuracy, 1)}</td>
                <td>
                  {percent(p.low)}–{percent(p.high)}
                </td>
                <td>{p.test_labels}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </>
  );
}

export function Confusion(props: { classes: string[]; matrix: number[][] }) {
  const { classes, matrix } = props;
  return (
    <div className="table-scroll">
      <table className="confusion" data-testid="confusion">
        <thead>
          <tr>
            <th scope="col">
              <span className="visually-hidden">True class \ predicted</span>
              <span aria-hidden="true">true ╲ predicted</span>
            </th>
            {classes.map((cls) => (
              <th key={cls} scope="col">
                {cls}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {classes.map((cls, i) => {
            const row = matrix[i] ?? [];
            const total = row.reduce((a, b) => a + b, 0);
            return (
              <tr key={cls}>
                <th scope="row">{cls}</th>
                {classes.map((pred, j) => {
                  const value = row[j] ?? 0;
                  const share = total > 0 ? value / total : 0;
                  const diagonal = i === j;
                  return (
                    <td
                      key={pred}
                      className={share > 0.55 ? 'dark' : undefined}
                      style={{
                        backgroundColor:
                          value === 0
                            ? undefined
                            : `hsl(${diagonal ? 150 : 5} 70% ${Math.round(96 - share * 60)}%)`,
                      }}
                      title={`true ${cls}, predicted ${pred}: ${value} (${percent(share)} of row)`}
                    >
                      {value}
                    </td>
                  );
                })}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
