import { renderDeep, renderTemplate, TemplateData, templateReferences } from '../../common/template';

const data: TemplateData = {
  Nonce: 'n0nce',
  Server: { RegistrationAddr: '10.0.1.10:8443' },
  Image: { al2023arm: 'ami-0abc' },
  Vars: { Environment: 'demo' },
};

describe('templateReferences', () => {
  it('lists references as path segments, in order', () => {
    const text = '#!/bin/sh\nagent --register {{ .Server.RegistrationAddr }} --nonce {{.Nonce}} {{ .Image.al2023arm }}';
    expect(templateReferences(text)).toEqual([['Server', 'RegistrationAddr'], ['Nonce'], ['Image', 'al2023arm']]);
  });

  it('finds nothing in plain text', () => {
    expect(templateReferences('no templates } here {')).toEqual([]);
  });

  it.each(['{{ if .Nonce }}', '{{ .Nonce | base64 }}', '{{ printf "%s" .Nonce }}', '{{ }}', '{{ Nonce }}', '{{ .Image.0 }}', '{{/* c */}}', '{{ .A..B }}'])(
    'rejects unsupported syntax %s',
    (text) => {
      expect(() => templateReferences(text, 'where')).toThrow(`where: unsupported template syntax ${JSON.stringify(text)} on line 1`);
    },
  );

  it('rejects an unclosed action with its line', () => {
    expect(() => templateReferences('a\nb {{ .Nonce\n', 'userdata')).toThrow('userdata: unclosed "{{" on line 2');
  });
});

describe('renderTemplate', () => {
  it('substitutes field references', () => {
    expect(renderTemplate('--register {{ .Server.RegistrationAddr }} --nonce {{ .Nonce }} env={{.Vars.Environment}}', data, 'x')).toBe(
      '--register 10.0.1.10:8443 --nonce n0nce env=demo',
    );
  });

  it('supports Go trim markers', () => {
    expect(renderTemplate('a  \n {{- .Nonce -}} \n  b', data, 'x')).toBe('an0nceb');
    // As in Go, "-" is a trim marker only when followed by a space.
    expect(() => renderTemplate('a {{-.Nonce}}', data, 'x')).toThrow('unsupported template syntax');
  });

  it('names the source and the reference when a reference is unknown', () => {
    expect(() => renderTemplate('echo {{ .Image.foo }}', data, 'template "web" userdata')).toThrow(
      'template "web" userdata: unknown reference .Image.foo',
    );
    expect(() => renderTemplate('{{ .Nonce.Deeper }}', data, 'w')).toThrow('w: unknown reference .Nonce.Deeper');
  });

  it('refuses to print a whole map', () => {
    expect(() => renderTemplate('{{ .Server }}', data, 'w')).toThrow('w: reference .Server is not a value; use one of its fields: .Server.RegistrationAddr');
  });

  it('does not resolve inherited properties', () => {
    expect(() => renderTemplate('{{ .Vars.constructor }}', data, 'w')).toThrow('unknown reference .Vars.constructor');
  });

  it('leaves text without actions untouched', () => {
    expect(renderTemplate('plain { text }', data, 'w')).toBe('plain { text }');
  });
});

describe('renderDeep', () => {
  it('renders every string in args, naming the path on failure', () => {
    const args = { ImageId: '{{ .Image.al2023arm }}', Tags: [{ Key: 'env', Value: '{{ .Vars.Environment }}' }], Count: 1 };
    expect(renderDeep(args, data, 'args')).toEqual({ ImageId: 'ami-0abc', Tags: [{ Key: 'env', Value: 'demo' }], Count: 1 });
    expect(() => renderDeep({ Tags: [{ Value: '{{ .Vars.Nope }}' }] }, data, 'group default/web args')).toThrow(
      'group default/web args.Tags[0].Value: unknown reference .Vars.Nope',
    );
  });
});
