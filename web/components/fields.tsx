/** Labelled form fields with their error beside them (linked by aria-describedby for screen readers). */
import type { ComponentChildren } from "preact";

export function Field(
  { id, label, error, hint, children }: {
    id: string;
    label: string;
    error?: string;
    hint?: string;
    children: ComponentChildren;
  },
) {
  return (
    <div class={`field${error ? " has-error" : ""}`}>
      <label for={id}>{label}</label>
      {children}
      {hint && !error && <span class="hint" id={`${id}-hint`}>{hint}</span>}
      {error && <span class="field-error" id={`${id}-error`} role="alert" data-field={id}>{error}</span>}
    </div>
  );
}

/**
 * A labelled one-line text input with its hint and error; `numeric` asks for a numeric keypad, `disabled`
 * greys it out (the hint then says why).
 */
export function TextField(
  { id, label, error, hint, value, onValue, numeric, disabled }: {
    id: string;
    label: string;
    error?: string;
    hint?: string;
    value: string;
    onValue: (value: string) => void;
    numeric?: boolean;
    disabled?: boolean;
  },
) {
  return (
    <Field id={id} label={label} error={error} hint={hint}>
      <input
        {...describedBy(id, error, hint)}
        type="text"
        inputMode={numeric ? "numeric" : undefined}
        disabled={disabled}
        value={value}
        onInput={(e) => onValue((e.target as HTMLInputElement).value)}
      />
    </Field>
  );
}

/** A labelled drop-down with its hint and error. */
export function SelectField(
  { id, label, error, hint, value, onValue, options }: {
    id: string;
    label: string;
    error?: string;
    hint?: string;
    value: string;
    onValue: (value: string) => void;
    options: ReadonlyArray<{ value: string; label: string }>;
  },
) {
  return (
    <Field id={id} label={label} error={error} hint={hint}>
      <select
        {...describedBy(id, error, hint)}
        value={value}
        onChange={(e) => onValue((e.target as HTMLSelectElement).value)}
      >
        {options.map((o) => <option key={o.value} value={o.value}>{o.label}</option>)}
      </select>
    </Field>
  );
}

/** aria attributes for an input inside <Field>. */
export function describedBy(id: string, error?: string, hint?: string) {
  return {
    id,
    "aria-invalid": error ? true : undefined,
    "aria-describedby": error ? `${id}-error` : hint ? `${id}-hint` : undefined,
  };
}

export function CheckboxGroup(
  { id, legend, options, labels, selected, onChange, error }: {
    id: string;
    legend: string;
    options: string[];
    /** What an option shows, where it is more than its value. */
    labels?: Readonly<Record<string, string>>;
    selected: string[];
    onChange: (next: string[]) => void;
    error?: string;
  },
) {
  return (
    <fieldset
      class={`field checkbox-group${error ? " has-error" : ""}`}
      id={id}
      aria-invalid={error ? true : undefined}
    >
      <legend>{legend}</legend>
      <div class="checkbox-options">
        {options.map((option) => (
          <label key={option} class="checkbox">
            <input
              type="checkbox"
              name={id}
              value={option}
              checked={selected.includes(option)}
              onChange={(e) => {
                const on = (e.target as HTMLInputElement).checked;
                onChange(on ? [...selected, option] : selected.filter((s) => s !== option));
              }}
            />
            {labels?.[option] ?? option}
          </label>
        ))}
      </div>
      {error && <span class="field-error" id={`${id}-error`} role="alert" data-field={id}>{error}</span>}
    </fieldset>
  );
}
