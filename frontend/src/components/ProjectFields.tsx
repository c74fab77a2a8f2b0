// The project settings asked both when a project is created and on its settings page.
import { Field, TextAreaField, TextField, type TextAreaFieldProps, type TextFieldProps } from './Field';

const STRATEGY_TEXT: Record<string, string> = {
  entropy: 'Entropy (least sure)',
  margin: 'Margin (top two closest)',
  least_confidence: 'Least confidence',
  random: 'Random',
  kcenter: 'k-center (cover the dataset)',
  cluster_margin: 'Cluster margin (unsure and diverse)',
  power_margin: 'Power margin (unsure, sampled: noisy data)',
  adaptive_margin: 'Adaptive margin (cluster margin where sure, power margin where not)',
  bait: 'Fisher design (BAIT: what most reduces the expected error over all items)',
  adaptive_bait: 'Adaptive BAIT (the default: Fisher design at first and where sure, power margin where not)',
};

export const strategyText = (s: string) => STRATEGY_TEXT[s] ?? s;

/** The auto-label threshold, typed as text: it is checked (0.5–1) on submit. */
export function ThresholdField(props: Omit<TextFieldProps, 'label' | 'hint' | 'type'>) {
  return <TextField label="Auto-label threshold" hint="0.5–1" type="number" min={0.5} max={1} step={0.01} {...props} />;
}

/** How the next items to label are picked. */
export function StrategyField(props: {
  value: string;
  onChange: (strategy: string) => void;
  strategies: readonly string[];
  disabled: boolean;
  testId: string;
}) {
  return (
    <Field label="Next items by">
      <select
        value={props.value}
        onChange={(e) => props.onChange(e.target.value)}
        disabled={props.disabled}
        data-testid={props.testId}
      >
        {props.strategies.map((s) => (
          <option key={s} value={s}>
            {strategyText(s)}
          </option>
        ))}
      </select>
    </Field>
  );
}

/** The share of labelled items checked by a second labeller, typed as a percentage. */
export function OverlapField(props: Omit<TextFieldProps, 'label' | 'hint' | 'type'>) {
  return (
    <TextField
      label="Second opinions (%)"
      hint="0–50: share of labelled items also given to another labeller, for agreement"
      type="number"
      min={0}
      max={50}
      step={1}
      {...props}
    />
  );
}

/** The labellers' instructions (HTML). */
export function DescriptionField(props: Omit<TextAreaFieldProps, 'label'>) {
  return <TextAreaField label="Instructions for labellers" {...props} />;
}

/** The project's title. */
export function TitleField(props: Omit<TextFieldProps, 'label' | 'hint' | 'type'>) {
  return <TextField label="Title" type="text" {...props} />;
}
