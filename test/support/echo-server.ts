// A hostile upstream for secret tests, run on a test host: over TLS it answers every request by
// echoing the Authorization header it received, encoded as the path asks (/gzip, /base64,
// /reverse, /plain). Usage: node echo-server.ts ADDRESS CERT_FILE KEY_FILE; prints "listening".

import fs from 'node:fs';
import https from 'node:https';
import zlib from 'node:zlib';

const [address, certFile, keyFile] = process.argv.slice(2);
const server = https.createServer({ cert: fs.readFileSync(certFile!), key: fs.readFileSync(keyFile!) }, (req, res) => {
  const auth = String(req.headers.authorization ?? '');
  const plain = Buffer.from(`echo:${auth}`);
  // Compressed although the client asked for identity: a hostile host does what it likes.
  if (req.url === '/gzip') return res.writeHead(200, { 'content-encoding': 'gzip' }).end(zlib.gzipSync(plain));
  if (req.url === '/base64') return res.end(`echo:${Buffer.from(auth).toString('base64')}`);
  if (req.url === '/reverse') return res.end(`echo:${[...auth].reverse().join('')}`);
  res.end(plain);
});
server.listen(443, address, () => console.log('listening'));
