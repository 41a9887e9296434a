/**
 * Unit tests of shared/bfl/trusted-urls.ts, the SSRF guard for polling and result URLs: https on
 * bfl.ai or a subdomain, or exactly one of the configured extra origins.
 */
import assert from "node:assert/strict";
import { isTrustedProviderUrl } from "../shared/bfl/trusted-urls.ts";

const TRUSTED: string[] = [
  "https://api.bfl.ai/v1/get_result?id=abc",
  "https://api.eu.bfl.ai/v1/get_result?id=abc",
  "https://api.us1.bfl.ai/v1/get_result?id=abc",
  "https://delivery-eu1.bfl.ai/results/abc/sample.jpeg?se=1&sig=x",
  "https://delivery.us.bfl.ai/results/abc/sample.png",
  "https://bfl.ai/",
  "https://API.BFL.AI/v1/get_result?id=abc", // hosts are case-insensitive
  "https://api.bfl.ai:443/v1/get_result?id=abc",
];

const UNTRUSTED: [string, string][] = [
  ["plain http to a BFL host", "http://api.bfl.ai/v1/get_result?id=abc"],
  ["plain http to a delivery host", "http://delivery-eu1.bfl.ai/results/abc/sample.jpeg"],
  ["bfl.ai as a subdomain of another host", "https://bfl.ai.evil.com/v1/get_result"],
  ["a host that merely ends in bfl.ai", "https://evilbfl.ai/v1/get_result"],
  ["a host ending in -bfl.ai", "https://api-bfl.ai/x"],
  ["credentials in the URL", "https://user:pass@api.bfl.ai/v1/get_result?id=abc"],
  ["a user name in the URL", "https://user@api.bfl.ai/v1/get_result?id=abc"],
  ["a BFL host in the user info", "https://api.bfl.ai@evil.example/v1/get_result"],
  ["a BFL host in the path", "https://evil.example/api.bfl.ai/v1/get_result"],
  ["a BFL host in the query", "https://evil.example/?next=https://api.bfl.ai/"],
  ["an arbitrary https host", "https://evil.example/v1/get_result?id=abc"],
  ["a loopback address", "https://127.0.0.1/v1/get_result?id=abc"],
  ["a cloud metadata address", "http://169.254.169.254/latest/meta-data/"],
  ["another scheme", "ftp://api.bfl.ai/x"],
  ["a javascript: URL", "javascript:alert(1)"],
  ["a data: URL", "data:text/plain,api.bfl.ai"],
  ["a file: URL", "file:///etc/passwd"],
  ["a relative URL", "/v1/get_result?id=abc"],
  ["a scheme-relative URL", "//api.bfl.ai/v1/get_result"],
  ["a garbage string", "not a url"],
  ["the empty string", ""],
  ["a bare host name", "api.bfl.ai"],
  ["a URL with spaces in the host", "https://api bfl.ai/"],
];

for (const url of TRUSTED) {
  Deno.test(`isTrustedProviderUrl() accepts ${url}`, () => {
    assert.equal(isTrustedProviderUrl(url), true);
    assert.equal(isTrustedProviderUrl(url, ["http://127.0.0.1:8787"]), true, "extra origins add, never remove");
  });
}

for (const [name, url] of UNTRUSTED) {
  Deno.test(`isTrustedProviderUrl() rejects ${name}: ${JSON.stringify(url)}`, () => {
    assert.equal(isTrustedProviderUrl(url), false);
    assert.equal(isTrustedProviderUrl(url, ["http://127.0.0.1:8787"]), false);
  });
}

const EXTRA = ["http://127.0.0.1:8787", "https://sim.example.test"];

const EXTRA_CASES: [string, boolean][] = [
  ["http://127.0.0.1:8787/v1/get_result?id=abc", true],
  ["http://127.0.0.1:8787/results/abc/sample.jpeg?se=1&sig=x", true],
  ["http://127.0.0.1:8787", true],
  ["https://sim.example.test/anything", true],
  ["https://sim.example.test:443/anything", true], // the default port is part of the same origin
  ["https://SIM.example.test/anything", true],
  ["http://127.0.0.1:8788/v1/get_result?id=abc", false], // another port
  ["http://127.0.0.1/v1/get_result?id=abc", false], // the default port
  ["https://127.0.0.1:8787/v1/get_result?id=abc", false], // another scheme
  ["http://localhost:8787/v1/get_result?id=abc", false], // another name for the same address
  ["http://127.0.0.2:8787/v1/get_result?id=abc", false],
  ["http://sim.example.test/anything", false], // http instead of https
  ["https://sim.example.test:8443/anything", false],
  ["https://x.sim.example.test/anything", false], // origins do not extend to subdomains
  ["https://sim.example.test.evil.com/anything", false],
  ["https://evil.example/?origin=http://127.0.0.1:8787", false],
];

for (const [url, trusted] of EXTRA_CASES) {
  Deno.test(`isTrustedProviderUrl() with extra origins ${trusted ? "accepts" : "rejects"} ${url}`, () => {
    assert.equal(isTrustedProviderUrl(url, EXTRA), trusted);
  });
}

Deno.test("isTrustedProviderUrl() trusts no loopback origin unless it is configured", () => {
  const url = "http://127.0.0.1:8787/v1/get_result?id=abc";
  assert.equal(isTrustedProviderUrl(url), false);
  assert.equal(isTrustedProviderUrl(url, []), false);
  assert.equal(isTrustedProviderUrl(url, ["http://127.0.0.1:8787"]), true);
});
