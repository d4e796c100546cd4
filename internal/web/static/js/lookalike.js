// Look-alike names: two members of a chat whose names read the same (the same after
// compatibility normalization, case folding and trimming, or letters of another script that
// look like Latin ones) are told apart by their email where the client can learn it (members
// see each other's through GET /users), or else by '#id'. Shown beside the name in message
// headers, the member list and mention completion.

// Letters of Cyrillic and Greek that are drawn like a Latin letter, as that letter: "Аnna" in
// Cyrillic А reads as "Anna". Names mixing scripts in one word are refused since (the server's
// checkScripts); whole words in another script, and names stored before, still get here.
const LATIN_LOOK = new Map(Object.entries({
  А: 'a', В: 'b', Е: 'e', К: 'k', М: 'm', Н: 'h', О: 'o', Р: 'p', С: 'c', Т: 't', Х: 'x', У: 'y', Ѕ: 's', І: 'i', Ј: 'j',
  а: 'a', е: 'e', о: 'o', р: 'p', с: 'c', у: 'y', х: 'x', ѕ: 's', і: 'i', ј: 'j', ԁ: 'd', һ: 'h', ӏ: 'l', ԛ: 'q', ԝ: 'w',
  Α: 'a', Β: 'b', Ε: 'e', Ζ: 'z', Η: 'h', Ι: 'i', Κ: 'k', Μ: 'm', Ν: 'n', Ο: 'o', Ρ: 'p', Τ: 't', Υ: 'y', Χ: 'x',
  ο: 'o', ι: 'i', ν: 'v', κ: 'k', ρ: 'p', ѵ: 'v', α: 'a', υ: 'u', τ: 't', γ: 'y', ω: 'w',
  // Cherokee capitals drawn like Latin ones (a word in one script passes the server's check).
  Ꭰ: 'd', Ꭱ: 'r', Ꭲ: 't', Ꭵ: 'i', Ꭹ: 'y', Ꭺ: 'a', Ꭻ: 'j', Ꭼ: 'e', Ꮃ: 'w', Ꮇ: 'm', Ꮋ: 'h', Ꮐ: 'g',
  Ꮒ: 'h', Ꮓ: 'z', Ꮟ: 'b', Ꮢ: 'r', Ꮤ: 'w', Ꮥ: 's', Ꮩ: 'v', Ꮪ: 's', Ꮮ: 'l', Ꮯ: 'c', Ꮲ: 'p', Ꮶ: 'k',
  Ᏼ: 'b',
}));
const IGNORED = /[\p{Default_Ignorable_Code_Point}\p{Cc}]/gu;

const keys = new Map(); // name -> its key (names repeat: one normalization each)

/** nameKey is what a name reads as: names with the same key look alike. */
export function nameKey(name) {
  let k = keys.get(name);
  if (k !== undefined) return k;
  k = [...(name || '').normalize('NFKC').replace(IGNORED, '')].map((c) => LATIN_LOOK.get(c) ?? c).join('');
  k = [...k.toLowerCase().normalize('NFKC')].map((c) => LATIN_LOOK.get(c) ?? c).join('').replace(/\s+/gu, ' ').trim();
  if (keys.size > 10000) keys.clear();
  keys.set(name, k);
  return k;
}

/**
 * twinsIn returns the ids, among chatId's members and the users of more (say the senders of
 * the messages loaded, some of whom left), whose name looks like someone else's there.
 */
export function twinsIn(store, chatId, more = []) {
  const byKey = new Map(); // key -> first id
  const twins = new Set();
  const see = (id, name) => {
    if (id == null || !name) return;
    const k = nameKey(name);
    const first = byKey.get(k);
    if (first === undefined) byKey.set(k, id);
    else if (first !== id) twins.add(first).add(id);
  };
  for (const m of store.members.get(chatId)?.values() || []) see(m.id, m.name || store.name(m.id));
  for (const id of more) if (!store.members.get(chatId)?.has(id)) see(id, store.name(id));
  return twins;
}

/** tellApart is what is shown beside a look-alike name: the user's email if known, or '#id'. */
export function tellApart(store, id) {
  return store.emails.get(id) || `#${id}`;
}
