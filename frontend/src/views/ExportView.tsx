import { api, type Project, type Stats } from '../api';
import { DownloadLink } from '../components/DownloadLink';
import { count } from '../format';

export function ExportView(props: { project: Project; stats: Stats | null }) {
  const { project, stats } = props;
  const hasModel = Boolean(stats?.model_version);
  return (
    <section className="export-view" aria-labelledby="export-title" data-testid="export-view">
      <h1 id="export-title">Export</h1>
      <ul className="export-list">
        <li className="card">
          <h2>Labels</h2>
          <p className="muted">
            {stats ? `${count(stats.counts.labelled + stats.counts.model_labelled)} labels` : 'All labels'}, with who
            labelled each item, how long it took and its stage.
          </p>
          <p className="export-links">
            <DownloadLink className="button" href={api.exportUrl(project.id, 'csv')} testId="export-csv">
              Download labels (CSV)
            </DownloadLink>
            <DownloadLink className="button" href={api.exportUrl(project.id, 'jsonl')} testId="export-jsonl">
              Download labels (JSONL)
            </DownloadLink>
          </p>
        </li>
        <li className="card">
          <h2>Model</h2>
          <p className="muted">
            {hasModel
              ? `Model v${stats?.model_version}: weights (safetensors) and its metadata (JSON) in one .tar.`
              : 'No model yet: it is trained once there are enough labels.'}
          </p>
          <p className="export-links">
            {hasModel ? (
              <DownloadLink className="button" href={api.modelUrl(project.id)} testId="export-model">
                Download model (.tar)
              </DownloadLink>
            ) : (
              <span className="button button--disabled" aria-disabled="true">
                Download model (.tar)
              </span>
            )}
          </p>
        </li>
      </ul>
    </section>
  );
}
