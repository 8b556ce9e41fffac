// The bundle's SEAL, checked in the page: manifest.json must be the exact bytes export sealed.
//
// SEAL is one sha256sum line, "<sha256 of manifest.json>  manifest.json" (bundle/manifest.py is the
// definition; the server and the APK build check it with bundle.manifest.load_bundle). The
// manifest's "files" hashes cover every other file, so a sealed manifest pins the whole bundle.
//
//   const manifest = await sealedManifest(response, 'bundle/');  // response: fetch of manifest.json
//   // throws Error('bundle manifest.json does not match its SEAL ...') on an edited manifest

const hex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');

export async function sealedManifest(response, base) {
  const bytes = await response.arrayBuffer();
  const sealResponse = await fetch(new URL('SEAL', new URL(base, location.href)));
  if (!sealResponse.ok) throw new Error(`bundle is not sealed: SEAL: HTTP ${sealResponse.status}`);
  const seal = await sealResponse.text();
  const got = hex(await crypto.subtle.digest('SHA-256', bytes));
  if (seal !== `${got}  manifest.json\n`) {
    throw new Error(`bundle manifest.json does not match its SEAL (sha256 ${got.slice(0, 12)}..., ` +
                    `SEAL says ${seal.slice(0, 12)}...): it was modified after export`);
  }
  return JSON.parse(new TextDecoder().decode(bytes));
}
