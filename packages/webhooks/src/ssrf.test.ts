import { checkWebhookUrl, isForbiddenAddress, parseAllowCidrs } from './ssrf.js';

describe('SSRF guard', () => {
  it.each([
    '127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    '169.254.169.254',
    '100.100.100.200',
    '0.0.0.0',
    '::1',
    '::',
    'fe80::1',
    'fd00:ec2::254',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:169.254.169.254',
    '64:ff9b::a00:1',
    'ff02::1',
  ])('refuses %s', (addr) => {
    expect(isForbiddenAddress(addr)).toBe(true);
  });

  it.each(['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('allows public %s', (addr) => {
    expect(isForbiddenAddress(addr)).toBe(false);
  });

  it('opens exactly the listed private networks, in every IPv6 spelling of their IPv4 addresses', () => {
    const allowCidrs = ['127.0.0.0/8', '10.20.0.0/16', '::1/128'];
    for (const a of ['127.0.0.1', '127.9.9.9', '10.20.3.4', '::1', '::ffff:127.0.0.1', '::ffff:a14:304', '64:ff9b::7f00:1'])
      expect([a, isForbiddenAddress(a, { allowCidrs })]).toEqual([a, false]);
    for (const a of ['10.21.0.1', '192.168.1.1', '172.16.0.1', 'fd00::1']) expect([a, isForbiddenAddress(a, { allowCidrs })]).toEqual([a, true]);
  });

  it('never admits link-local (metadata), multicast, broadcast or unspecified addresses, even under an allow-list that covers them', () => {
    const allowCidrs = ['0.0.0.0/0', '::/0'];
    for (const a of [
      '169.254.169.254',
      '::ffff:169.254.169.254',
      '::ffff:a9fe:a9fe',
      '64:ff9b::a9fe:a9fe',
      'fe80::1',
      'fe80::1%eth0',
      'febf::1',
      '224.0.0.1',
      '239.255.255.250',
      'ff02::1',
      '255.255.255.255',
      '0.0.0.0',
      '::',
    ])
      expect([a, isForbiddenAddress(a, { allowCidrs })]).toEqual([a, true]);
    // ...while the same list opens every private network
    expect(isForbiddenAddress('10.0.0.1', { allowCidrs })).toBe(false);
    expect(isForbiddenAddress('fd00::1', { allowCidrs })).toBe(false);
  });

  it('refuses allow-list entries that are malformed or can never be opened, naming them', () => {
    for (const bad of ['10.0.0.0/33', '10.0.0/8', 'localhost', '::1/129', '10.0.0.0/8/1', '10.0.0.0/x']) expect(() => parseAllowCidrs([bad])).toThrow(bad);
    for (const never of ['169.254.169.254/32', '169.254.0.0/16', 'fe80::/10', '224.0.0.0/4', '255.255.255.255', 'ff00::/8', '::ffff:169.254.0.0/112'])
      expect(() => parseAllowCidrs([never])).toThrow(/never reach/);
    expect(() => parseAllowCidrs(['127.0.0.0/8', '::1/128', '10.0.0.1', '0.0.0.0/0'])).not.toThrow();
  });

  it('reads the deprecated allowPrivate: true as loopback only', () => {
    expect(isForbiddenAddress('127.0.0.1', { allowPrivate: true })).toBe(false);
    expect(isForbiddenAddress('::1', { allowPrivate: true })).toBe(false);
    for (const a of ['10.0.0.1', '192.168.0.1', '169.254.169.254', 'fe80::1']) expect(isForbiddenAddress(a, { allowPrivate: true })).toBe(true);
  });

  it('checks every address a host resolves to, and IP literals without DNS', async () => {
    const resolve = async (host: string) => (host === 'evil.example' ? ['93.184.216.34', '127.0.0.1'] : ['93.184.216.34']);
    await expect(checkWebhookUrl('https://evil.example/hook', { resolve })).rejects.toMatchObject({ code: 'FORBIDDEN_ADDRESS' });
    await expect(checkWebhookUrl('https://evil.example/hook', { resolve, allowCidrs: ['127.0.0.0/8'] })).resolves.toEqual(['93.184.216.34', '127.0.0.1']);
    await expect(checkWebhookUrl('https://good.example/hook', { resolve })).resolves.toEqual(['93.184.216.34']);
    await expect(checkWebhookUrl('http://[::1]:8080/x')).rejects.toMatchObject({ code: 'FORBIDDEN_ADDRESS' });
    await expect(checkWebhookUrl('http://169.254.169.254/latest/meta-data')).rejects.toMatchObject({ code: 'FORBIDDEN_ADDRESS' });
    await expect(checkWebhookUrl('http://169.254.169.254/latest/meta-data', { allowCidrs: ['0.0.0.0/0'] })).rejects.toThrow(/cloud metadata/);
    await expect(checkWebhookUrl('http://[::ffff:169.254.169.254]/x', { allowCidrs: ['0.0.0.0/0'] })).rejects.toMatchObject({ code: 'FORBIDDEN_ADDRESS' });
    await expect(checkWebhookUrl('http://localhost:3000/x')).rejects.toMatchObject({ code: 'FORBIDDEN_ADDRESS' }); // real DNS: loopback
    await expect(checkWebhookUrl('http://127.0.0.1:3000/x', { allowCidrs: ['127.0.0.0/8'] })).resolves.toEqual(['127.0.0.1']);
  });

  it('refuses the ports of local services and privileged ports other than 80 and 443, even on allowed networks', async () => {
    const allowCidrs = ['127.0.0.0/8'];
    for (const url of [
      'http://127.0.0.1:6379/',
      'http://127.0.0.1:5432/',
      'http://127.0.0.1:22/',
      'http://127.0.0.1:25/',
      'https://127.0.0.1:10250/',
      'http://8.8.8.8:11211/',
    ])
      await expect(checkWebhookUrl(url, { allowCidrs })).rejects.toThrow(/port \d+ is refused/);
    for (const url of ['http://127.0.0.1/', 'https://127.0.0.1/', 'http://127.0.0.1:80/', 'http://127.0.0.1:8080/', 'https://127.0.0.1:8443/'])
      await expect(checkWebhookUrl(url, { allowCidrs })).resolves.toEqual(['127.0.0.1']);
  });

  it('refuses URLs that are not http(s) or carry credentials, with a message naming the scheme', async () => {
    await expect(checkWebhookUrl('file:///etc/passwd')).rejects.toMatchObject({ code: 'BAD_URL', message: expect.stringContaining('file:') });
    await expect(checkWebhookUrl('https://u:p@example.com/')).rejects.toMatchObject({ code: 'BAD_URL' });
    await expect(checkWebhookUrl('not a url')).rejects.toMatchObject({ code: 'BAD_URL' });
  });
});
