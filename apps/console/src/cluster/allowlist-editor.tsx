import { IP_ALLOWLIST_DESCRIPTION_MAX, IP_ALLOWLIST_MAX, parseNetwork, type AllowlistEntry } from '../../../../libs/contracts/src';
import { FieldSet } from '../ui/field';

/** Whether an entry lets every address in (0.0.0.0/0, ::/0): the one the API wants confirmed. */
export const isAnyAddress = (cidr: string) => parseNetwork(cidr.trim())?.prefix === 0;

interface Props {
  entries: AllowlistEntry[];
  onChange: (entries: AllowlistEntry[]) => void;
  allowAnyAddress: boolean;
  onAllowAnyAddress: (confirmed: boolean) => void;
  /** The contract's (or the server's) message for the allowlist: it names the entry (`ipAllowlist.2.cidr ...`). */
  error?: string;
}

/**
 * The public endpoint's allowlist as rows of a network (CIDR) and a description, added and
 * removed one by one; the rules are the contract's, checked by whoever submits it. An entry of
 * 0.0.0.0/0 or ::/0 brings a confirmation checkbox, as the API wants `allowAnyAddress` with it.
 */
export function AllowlistEditor({ entries, onChange, allowAnyAddress, onAllowAnyAddress, error }: Props) {
  const set = (i: number, change: Partial<AllowlistEntry>) => onChange(entries.map((e, k) => (k === i ? { ...e, ...change } : e)));
  const anyone = entries.some((e) => isAnyAddress(e.cidr));
  return (
    <FieldSet legend="Allowed sources" error={error}
      hint={`Only these networks reach the public endpoint (IPv4 or IPv6, in CIDR notation: 203.0.113.0/24, 2001:db8::/32; one address: 203.0.113.7/32). Up to ${IP_ALLOWLIST_MAX}. None: nobody.`}>
      {entries.length === 0 ? <p className="muted">No networks: the endpoint admits nobody.</p> : (
        <ol className="allowlist">
          {entries.map((e, i) => (
            <li key={i} className="allowlist-row">
              <label>Network {i + 1} (CIDR)
                <input value={e.cidr} onChange={(ev) => set(i, { cidr: ev.target.value })} autoComplete="off" spellCheck={false} placeholder="203.0.113.0/24" />
              </label>
              <label>Description {i + 1}
                <input value={e.description} maxLength={IP_ALLOWLIST_DESCRIPTION_MAX} onChange={(ev) => set(i, { description: ev.target.value })} autoComplete="off" placeholder="office VPN" />
              </label>
              <button type="button" className="button button-quiet" onClick={() => onChange(entries.filter((_, k) => k !== i))}>Remove network {i + 1}</button>
            </li>
          ))}
        </ol>
      )}
      <button type="button" className="button" disabled={entries.length >= IP_ALLOWLIST_MAX} onClick={() => onChange([...entries, { cidr: '', description: '' }])}>Add network</button>
      {anyone ? (
        <label className="checkbox">
          <input type="checkbox" checked={allowAnyAddress} onChange={(ev) => onAllowAnyAddress(ev.target.checked)} />
          Yes, let every address on the internet in (0.0.0.0/0 or ::/0)
        </label>
      ) : null}
    </FieldSet>
  );
}

/** The allowlist as the API takes it: each row trimmed, empty rows left out. */
export const allowlistBody = (entries: AllowlistEntry[]): AllowlistEntry[] =>
  entries.filter((e) => e.cidr.trim() !== '' || e.description.trim() !== '').map((e) => ({ cidr: e.cidr.trim(), description: e.description.trim() }));
