/**
 * Redaction of credentials in URLs, so that no snapshot, event or error
 * message leaks a password or token.
 *
 * @module
 */

const SECRET_PARAMS = /^(token|access_token|id_token|refresh_token|key|api_key|apikey|api-key|auth|authorization|password|passwd|pwd|secret|client_secret|jwt|session|sig|signature|credential|credentials)$/i;

/** `url` with user info and secret-looking query values replaced by `***`. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url.replace(/\/\/[^/@]*@/, "//***@");
  }
  if (parsed.username !== "" || parsed.password !== "") {
    parsed.username = parsed.username === "" ? "" : "***";
    parsed.password = parsed.password === "" ? "" : "***";
  }
  const names = [...new Set(parsed.searchParams.keys())];
  for (const name of names) {
    if (SECRET_PARAMS.test(name)) parsed.searchParams.set(name, "***");
  }
  // URLSearchParams encodes "*" as "%2A"; keep the marker readable.
  return parsed.toString().replace(/%2A%2A%2A/g, "***");
}
