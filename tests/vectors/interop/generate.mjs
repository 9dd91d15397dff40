// Interop vectors made with the wallets' own libraries (a tool; CI only reads the JSON).
//
//   cd tests/vectors/interop && npm ci
//   ../../../.venv/bin/python our_export.py > our_export.json   # coldvault's export
//   node generate.mjs                                           # writes the two JSON files
//
// keystone.json: coldvault's crypto-multi-accounts as Keystone's registry reads it, and a
//   crypto-multi-accounts encoded by Keystone's registry for the same keys.
// proofs.json: ownership proofs made by bip322-js, bitcoinjs-message, @metamask/eth-sig-util,
//   ethers and tweetnacl, each with a one-byte-changed message.
//
// Every private key here is a public test key: sha256 of a label printed beside it.
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const registry = require("@keystonehq/bc-ur-registry");
const { URDecoder } = require("@ngraveio/bc-ur");
const bip322 = require("bip322-js");
const bitcoinMessage = require("bitcoinjs-message");
const sigUtil = require("@metamask/eth-sig-util");
const ethers = require("ethers");
const nacl = require("tweetnacl");
const bs58 = require("bs58").default ?? require("bs58");
const bs58check = require("bs58check").default ?? require("bs58check");
const { ECPairFactory } = require("ecpair");
const ecc = require("@bitcoinerlab/secp256k1");
const bitcoin = require("bitcoinjs-lib");

const here = new URL(".", import.meta.url);
const pkg = JSON.parse(readFileSync(new URL("package.json", here)));
const version = (name) => `${name}@${JSON.parse(readFileSync(new URL(`node_modules/${name}/package.json`, here))).version}`;
const hex = (b) => (b === undefined ? null : Buffer.from(b).toString("hex"));

// ---------------------------------------------------------------- Keystone multi-accounts
const ours = JSON.parse(readFileSync(new URL("our_export.json", here)));

// How wallets read a crypto-multi-accounts: every field through the registry's getters.
function readAsKeystoneWallets(urText) {
  const ur = URDecoder.decode(urText);
  const accounts = registry.CryptoMultiAccounts.fromCBOR(ur.cbor);
  const keys = accounts.getKeys();
  return {
    ur_type: ur.type,
    // @keystonehq/keystone-sdk parseMultiAccounts: one entry per key, chain from the coin type
    keystone_sdk: {
      master_fingerprint: hex(accounts.getMasterFingerprint()),
      device: accounts.getDevice() ?? null,
      device_id: accounts.getDeviceId() ?? null,
      device_version: accounts.getVersion() ?? null,
      keys: keys.map((key) => {
        const origin = key.getOrigin();
        const chainCode = key.getChainCode();
        const parent = key.getParentFingerprint();
        return {
          coin_type: origin.getComponents()[1].getIndex(),
          path: `m/${origin.getPath()}`,
          source_fingerprint: hex(origin.getSourceFingerprint()),
          public_key: hex(key.getKey()),
          chain_code: hex(chainCode),
          // the SDK derives an xpub only when chain code and parent fingerprint are both set
          extended_public_key: chainCode && parent ? key.getBip32Key() : null,
          name: key.getName() ?? null,
          note: key.getNote() ?? null,
        };
      }),
    },
    // @keystonehq/sol-keyring (Solflare) syncKeyring: xfp and name from the FIRST key,
    // every key taken as a Solana account with pubKey = bs58(key data)
    sol_keyring: {
      xfp: hex(keys[0].getOrigin().getSourceFingerprint()),
      name: keys[0].getName() ?? null,
      accounts: keys.map((key, index) => ({
        hd_path: key.getOrigin().getPath(),
        pub_key: bs58.encode(key.getKey()),
        index,
      })),
    },
  };
}

// @keystonehq/base-eth-keyring (MetaMask) __readCryptoHDKey: a crypto-hdkey (it never reads
// crypto-multi-accounts)
function readAsMetaMask(urText) {
  const ur = URDecoder.decode(urText);
  const key = registry.CryptoHDKey.fromCBOR(ur.cbor);
  return {
    ur_type: ur.type,
    xfp: hex(key.getOrigin().getSourceFingerprint()),
    hd_path: `m/${key.getOrigin().getPath()}`,
    children_path: key.getChildren()?.getPath() ?? "0/*",
    xpub: key.getBip32Key(),
    note: key.getNote() ?? null,
    name: key.getName() ?? null,
  };
}

function keypath(path, fingerprint) {
  const components = path.replace(/^m\//, "").split("/").map((part) => {
    const hardened = /['h]$/.test(part);
    return new registry.PathComponent({ index: Number.parseInt(part, 10), hardened });
  });
  return new registry.CryptoKeypath(components, fingerprint);
}

// The same keys encoded by Keystone's registry: the Ethereum account xpub (note
// account.standard) and the Solana keys as bare 32-byte Ed25519 keys, with the device fields.
function keystoneMadeExport() {
  const fp = Buffer.from(ours.master_fingerprint, "hex");
  const raw = Buffer.from(bs58check.decode(ours.ethereum.xpub));
  const eth = new registry.CryptoHDKey({
    isMaster: false,
    key: raw.subarray(45, 78),
    chainCode: raw.subarray(13, 45),
    origin: keypath(ours.ethereum.account_path, fp),
    parentFingerprint: raw.subarray(5, 9),
    name: "Keystone",
    note: "account.standard",
  });
  const sol = ours.solana.paths.map((path, i) => new registry.CryptoHDKey({
    isMaster: false,
    key: Buffer.from(ours.solana.public_keys[i], "hex"),
    origin: keypath(path, fp),
    name: "Keystone",
  }));
  const multi = new registry.CryptoMultiAccounts(fp, [eth, ...sol], "Keystone 3 Pro", "f0e1d2c3b4a59687", "1.7.2");
  return multi.toUREncoder(4000).nextPart();
}

const keystoneUr = keystoneMadeExport();
const keystone = {
  producer: [version("@keystonehq/bc-ur-registry"), version("@ngraveio/bc-ur")],
  seed: ours.seed,
  ours: { ur: ours.ur, read: readAsKeystoneWallets(ours.ur) },
  ours_ethereum_account: { ur: ours.ethereum_account_ur, read: readAsMetaMask(ours.ethereum_account_ur) },
  ours_solana_account: { ur: ours.solana_account_ur, read: readAsKeystoneWallets(ours.solana_account_ur) },
  keystone_made: { ur: keystoneUr, read: readAsKeystoneWallets(keystoneUr) },
};

// ---------------------------------------------------------------- ownership proofs
const testKey = (label) => createHash("sha256").update(label).digest();
const challenge = (address) =>
  `coldvault ownership proof: client acme, wallet acme-treasury, address ${address}, ` +
  `nonce 3f0c8e1d2b4a59687766554433221100, issued 2026-12-04T00:00:00Z`;
// one byte changed: the last "Z" (the time zone of the issue time) becomes "Y"
const tamper = (message) => {
  const i = message.lastIndexOf("Z");
  return message.slice(0, i) + "Y" + message.slice(i + 1);
};

const proofs = [];
const ambiguous = [];
function add(entry) {
  proofs.push({ ...entry, tampered_message: tamper(entry.message) });
}

// Bitcoin
const ECPair = ECPairFactory(ecc);
const btcLabel = "coldvault interop test key: bitcoin";
const btcKey = ECPair.fromPrivateKey(testKey(btcLabel), { compressed: true });
const btcWif = btcKey.toWIF();
const btcAddress = (type) => bip322.Address.convertPubKeyIntoAddress(Buffer.from(btcKey.publicKey), type).mainnet;

for (const type of ["p2wpkh", "p2sh-p2wpkh", "p2tr"]) {
  const address = btcAddress(type);
  const message = challenge(address);
  add({ chain: "bitcoin", address, address_type: type, message, key_label: btcLabel,
        signature: bip322.Signer.sign(btcWif, address, message), format: "bip322-simple",
        producer: version("bip322-js"), how: "Signer.sign(wif, address, message): BIP-322 simple, base64 witness without prefix" });
}
const bip137 = (label, address, addressType, compressed, segwitType, how) => {
  const message = challenge(address);
  const key = testKey(label);
  const signature = bitcoinMessage.sign(message, key, compressed, segwitType ? { segwitType } : undefined).toString("base64");
  add({ chain: "bitcoin", address, address_type: addressType, message, key_label: label,
        signature, format: "bip137", header: Buffer.from(signature, "base64")[0],
        producer: version("bitcoinjs-message"), how });
};
bip137(btcLabel, btcAddress("p2pkh"), "p2pkh", true, undefined,
  "sign(message, key, compressed=true): header 31-34 (Bitcoin Core signmessage)");
bip137(btcLabel, btcAddress("p2wpkh"), "p2wpkh", true, undefined,
  "sign(message, key, compressed=true) for a segwit address: header 31-34 (Electrum's form)");
bip137(btcLabel, btcAddress("p2wpkh"), "p2wpkh", true, "p2wpkh",
  "sign(..., {segwitType: 'p2wpkh'}): header 39-42 (BIP-137, Trezor's form)");
bip137(btcLabel, btcAddress("p2sh-p2wpkh"), "p2sh-p2wpkh", true, "p2sh(p2wpkh)",
  "sign(..., {segwitType: 'p2sh(p2wpkh)'}): header 35-38 (BIP-137, Trezor's form)");
{
  const label = "coldvault interop test key: bitcoin uncompressed";
  const uncompressed = ECPair.fromPrivateKey(testKey(label), { compressed: false });
  const address = bitcoin.payments.p2pkh({ pubkey: Buffer.from(uncompressed.publicKey) }).address;
  bip137(label, address, "p2pkh-uncompressed", false, undefined,
    "sign(message, key, compressed=false): header 27-30");
}

// Ethereum
const ethLabel = "coldvault interop test key: ethereum";
const ethKey = testKey(ethLabel);
const wallet = new ethers.Wallet("0x" + hex(ethKey));
{
  const address = wallet.address;
  const message = challenge(address);
  add({ chain: "ethereum", address, message, key_label: ethLabel, format: "eip191",
        signature: sigUtil.personalSign({ privateKey: ethKey, data: "0x" + Buffer.from(message, "utf8").toString("hex") }),
        producer: version("@metamask/eth-sig-util"),
        how: "personalSign({privateKey, data: 0x-hex of the UTF-8 challenge}), as MetaMask's personal_sign" });
  add({ chain: "ethereum", address, message, key_label: ethLabel, format: "eip191",
        signature: await wallet.signMessage(message), producer: version("ethers"),
        how: "Wallet.signMessage(challenge string)" });
  const typed = {
    types: {
      EIP712Domain: [{ name: "name", type: "string" }, { name: "version", type: "string" }, { name: "chainId", type: "uint256" }],
      OwnershipProof: [{ name: "challenge", type: "string" }],
    },
    primaryType: "OwnershipProof",
    domain: { name: "coldvault", version: "1", chainId: 1 },
    message: { challenge: challenge(address) },
  };
  const typedText = JSON.stringify(typed);
  add({ chain: "ethereum", address, message: typedText, key_label: ethLabel, format: "eip712",
        signature: sigUtil.signTypedData({ privateKey: ethKey, data: typed, version: sigUtil.SignTypedDataVersion.V4 }),
        producer: version("@metamask/eth-sig-util"),
        how: "signTypedData({version: V4}), as MetaMask's eth_signTypedData_v4; --message is the same JSON" });
  const { EIP712Domain, ...types } = typed.types;
  add({ chain: "ethereum", address, message: typedText, key_label: ethLabel, format: "eip712",
        signature: await wallet.signTypedData(typed.domain, types, typed.message),
        producer: version("ethers"), how: "Wallet.signTypedData(domain, types, message)" });
  // Without EIP712Domain in types the two libraries sign different digests (eth-sig-util an
  // empty domain, ethers one built from the domain's fields): refused as ambiguous.
  const bare = { ...typed, types };
  ambiguous.push({
    chain: "ethereum", address, message: JSON.stringify(bare),
    signatures: {
      [version("@metamask/eth-sig-util")]: sigUtil.signTypedData({ privateKey: ethKey, data: bare, version: sigUtil.SignTypedDataVersion.V4 }),
      [version("ethers")]: await wallet.signTypedData(bare.domain, types, bare.message),
    },
  });
}

// Solana: Phantom's signMessage returns the raw 64-byte detached Ed25519 signature over the
// message bytes; the dapp encodes it (base58 or base64) before passing it on.
const solLabel = "coldvault interop test key: solana";
const solPair = nacl.sign.keyPair.fromSeed(testKey(solLabel));
const solAddress = bs58.encode(solPair.publicKey);
const solMessage = challenge(solAddress);
const solSig = nacl.sign.detached(new TextEncoder().encode(solMessage), solPair.secretKey);
for (const [encoding, text] of [["base58", bs58.encode(solSig)], ["base64", Buffer.from(solSig).toString("base64")], ["hex", hex(solSig)]]) {
  add({ chain: "solana", address: solAddress, message: solMessage, key_label: solLabel, format: "ed25519",
        encoding, signature: text, producer: [version("tweetnacl"), version("bs58")],
        how: `nacl.sign.detached(UTF-8 challenge, secretKey), ${encoding}-encoded` });
}
// encodings a dapp may produce by mistake; refused as malformed-signature
const rejected = [
  ["json-array", JSON.stringify(Array.from(solSig))],
  ["json-object", JSON.stringify(Object.fromEntries(Array.from(solSig).map((b, i) => [i, b])))],
  ["base64url", Buffer.from(solSig).toString("base64url")],
].map(([encoding, signature]) => ({ chain: "solana", address: solAddress, message: solMessage, encoding, signature }));

const out = (name, doc) => writeFileSync(new URL(name, here), JSON.stringify(doc, null, 2) + "\n");
out("keystone.json", keystone);
out("proofs.json", { producers: pkg.dependencies, node: process.version, proofs, rejected_encodings: rejected,
                     eip712_without_domain_type: ambiguous });
console.log(`keystone.json; proofs.json: ${proofs.length} proofs, ${rejected.length} rejected encodings`);
