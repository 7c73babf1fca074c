import { checkWebhookUrl, isForbiddenAddress } from './ssrf.js';

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

  it('checks every address a host resolves to, and IP literals without DNS', async () => {
    const resolve = async (host: string) => (host === 'evil.example' ? ['93.184.216.34', '127.0.0.1'] : ['93.184.216.34']);
    await expect(checkWebhookUrl('https://evil.example/hook', { resolve })).rejects.toMatchObject({ code: 'FORBIDDEN_ADDRESS' });
    await expect(checkWebhookUrl('https://good.example/hook', { resolve })).resolves.toEqual(['93.184.216.34']);
    await expect(checkWebhookUrl('http://[::1]:8080/x')).rejects.toMatchObject({ code: 'FORBIDDEN_ADDRESS' });
    await expect(checkWebhookUrl('http://169.254.169.254/latest/meta-data')).rejects.toMatchObject({ code: 'FORBIDDEN_ADDRESS' });
    await expect(checkWebhookUrl('http://localhost:1/x')).rejects.toMatchObject({ code: 'FORBIDDEN_ADDRESS' }); // real DNS: loopback
    await expect(checkWebhookUrl('http://127.0.0.1:1/x', { allowPrivate: true })).resolves.toEqual(['127.0.0.1']);
  });

  it('refuses URLs that are not http(s) or carry credentials', async () => {
    await expect(checkWebhookUrl('file:///etc/passwd')).rejects.toMatchObject({ code: 'BAD_URL' });
    await expect(checkWebhookUrl('https://u:p@example.com/')).rejects.toMatchObject({ code: 'BAD_URL' });
    await expect(checkWebhookUrl('not a url')).rejects.toMatchObject({ code: 'BAD_URL' });
  });
});
