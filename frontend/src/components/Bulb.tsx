/** The logo: a light bulb, drawn so it needs no emoji font. */
export function Bulb() {
  return (
    <svg className="bulb" viewBox="0 0 32 32" width="1.1em" height="1.1em" aria-hidden="true" focusable="false">
      <circle cx="16" cy="13" r="9" fill="#f5c518" />
      <rect x="12" y="22" width="8" height="6" rx="1.5" fill="#777" />
    </svg>
  );
}
