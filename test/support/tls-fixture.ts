// A self-signed certificate and key for api.example.test (prime256v1, valid 10 years), generated once with
//   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
//     -subj /CN=api.example.test -addext subjectAltName=DNS:api.example.test
// so tests can run a local TLS upstream without a dependency. A test key: it protects nothing.

export const TLS_HOST = 'api.example.test';

export const TLS_CERT = `-----BEGIN CERTIFICATE-----
MIIBqTCCAU6gAwIBAgIUWX1UPpX+ax+kpGQa835yjO4yEocwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQYXBpLmV4YW1wbGUudGVzdDAeFw0yNjExMjQyMjUzMzFaFw0z
NjExMjEyMjUzMzFaMBsxGTAXBgNVBAMMEGFwaS5leGFtcGxlLnRlc3QwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAASt8ihaUpCckvfIOimyLIefeoi7Rb7k4rbvToLQ
g1DD6ugUqzKrH2NbbwaFsiTuE5ZTiCRlZ9AoPBCmklBNUDYeo3AwbjAdBgNVHQ4E
FgQUYe+4+nTftM8HX/fB39hXyP7T8VowHwYDVR0jBBgwFoAUYe+4+nTftM8HX/fB
39hXyP7T8VowDwYDVR0TAQH/BAUwAwEB/zAbBgNVHREEFDASghBhcGkuZXhhbXBs
ZS50ZXN0MAoGCCqGSM49BAMCA0kAMEYCIQD69G/xCHJeXxEPSymeK+IqI3Rt/BJZ
LUX2l4YOreZhGwIhAI4ubIGuRtrn3u8ebTZ4Cbjim0Nlz6BrJNLYxrTcwi0p
-----END CERTIFICATE-----
`;

export const TLS_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXNeVLMtGviIBJlCv
BoCn7hEslSA1IgDGsMKYKFMbDWKhRANCAASt8ihaUpCckvfIOimyLIefeoi7Rb7k
4rbvToLQg1DD6ugUqzKrH2NbbwaFsiTuE5ZTiCRlZ9AoPBCmklBNUDYe
-----END PRIVATE KEY-----
`;
