/** What the database can store of a text: one check shared by task imports and the API's string fields. */

/** Why a string cannot be stored: Postgres text and jsonb hold no NUL, UTF-8 has no lone surrogate. */
export function unstorableText(value: string): string | undefined {
  if (value.includes("\u0000")) return "must not contain a NUL character (\\u0000)";
  if (!value.isWellFormed()) return "must not contain a lone UTF-16 surrogate (\\uD800–\\uDFFF unpaired)";
  return undefined;
}
