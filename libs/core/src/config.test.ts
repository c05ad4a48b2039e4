import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from './config';

describe('certificate rotation settings', () => {
  it('defaults: server certificates 30 days before expiry, the CA 180 days before', () => {
    const c = loadConfig({});
    assert.equal(c.CERT_ROTATION_THRESHOLD_DAYS, 30);
    assert.equal(c.CA_ROTATION_THRESHOLD_DAYS, 180);
  });
  it('refuses thresholds out of range, naming the variable', () => {
    for (const [key, value] of [['CERT_ROTATION_THRESHOLD_DAYS', '0'], ['CERT_ROTATION_THRESHOLD_DAYS', '365'], ['CA_ROTATION_THRESHOLD_DAYS', 'soon'], ['CERT_ROTATION_TICK_MS', '10']] as const) {
      assert.throws(() => loadConfig({}, { [key]: value }), (e: Error) => e instanceof ConfigError && e.message.includes(key), `${key}=${value}`);
    }
  });
  it('refuses a CA threshold below the server certificates\' (they never outlive their CA)', () => {
    assert.throws(() => loadConfig({}, { CERT_ROTATION_THRESHOLD_DAYS: '60', CA_ROTATION_THRESHOLD_DAYS: '30' }), /CA_ROTATION_THRESHOLD_DAYS: must be at least CERT_ROTATION_THRESHOLD_DAYS \(60\)/);
    assert.equal(loadConfig({}, { CERT_ROTATION_THRESHOLD_DAYS: '60', CA_ROTATION_THRESHOLD_DAYS: '60' }).CA_ROTATION_THRESHOLD_DAYS, 60);
  });
});

describe('the default target', () => {
  it('is local, CLUSTER_TARGET when given, and refuses an unknown one naming the variable', () => {
    assert.equal(loadConfig({}).defaultTarget, 'local');
    assert.equal(loadConfig({}, { AZURE_CLIENT_ID: '00000000-0000-4000-8000-000000000001' }).defaultTarget, 'local', 'the API identity alone does not move clusters');
    assert.equal(loadConfig({}, { CLUSTER_TARGET: 'azure' }).defaultTarget, 'azure');
    assert.throws(() => loadConfig({}, { CLUSTER_TARGET: 'gcp' }), /CLUSTER_TARGET/);
  });
});

describe('the console\'s and the UI\'s origins', () => {
  it('http only on loopback: the __Host- cookies are Secure, which browsers keep from https or loopback alone', () => {
    for (const ok of ['http://127.0.0.1:3000', 'http://localhost:3000', 'http://console.localhost', 'https://console.example.com']) {
      assert.equal(loadConfig({}, { CONSOLE_ORIGIN: ok }).CONSOLE_ORIGIN, ok);
    }
    assert.throws(() => loadConfig({}, { CONSOLE_ORIGIN: 'http://console.example.com' }), /CONSOLE_ORIGIN: must be https/);
    assert.throws(() => loadConfig({}, { CONSOLE_ORIGIN: 'http://10.0.0.5:3000' }), /CONSOLE_ORIGIN/);
    assert.equal(loadConfig({}).CONSOLE_UI_SCHEME, 'http', 'the default ui.localhost over http is fine');
    assert.throws(() => loadConfig({}, { CONSOLE_UI_HOST_SUFFIX: 'ui.console.example.com' }), /CONSOLE_UI_SCHEME: must be https/);
    assert.equal(loadConfig({}, { CONSOLE_UI_HOST_SUFFIX: 'ui.console.example.com', CONSOLE_UI_SCHEME: 'https' }).CONSOLE_UI_SCHEME, 'https');
  });
});
