import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { EMPTY_ROOT, hashLeaf, inclusionProof, MerkleFrontier, rootOf, verifyInclusion } from '../../src/audit/merkle.js';

// The RFC 6962 test tree used by Certificate Transparency implementations (certificate-transparency-go
// merkle/testonly): 8 leaves, roots for every prefix size.
const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => Buffer.from(h, 'hex'));
const ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

test('RFC 6962 roots for every prefix of the CT test tree', () => {
  const leafHashes = LEAVES.map((l) => hashLeaf(l));
  const f = new MerkleFrontier();
  leafHashes.forEach((h, i) => {
    f.append(h);
    assert.equal(f.root().toString('hex'), ROOTS[i], `frontier size ${i + 1}`);
    assert.equal(rootOf(leafHashes.slice(0, i + 1)).toString('hex'), ROOTS[i], `recursive size ${i + 1}`);
  });
  assert.equal(EMPTY_ROOT.toString('hex'), createHash('sha256').digest('hex'));
});

test('frontier survives serialisation', () => {
  const f = new MerkleFrontier();
  for (const l of LEAVES.slice(0, 7)) f.append(hashLeaf(l));
  const g = MerkleFrontier.deserialize(7, f.serialize());
  g.append(hashLeaf(LEAVES[7]!));
  assert.equal(g.root().toString('hex'), ROOTS[7]);
});

test('inclusion proofs verify for every leaf of every size, and fail when anything changes', () => {
  const leafHashes = Array.from({ length: 13 }, (_, i) => hashLeaf(`leaf ${i}`));
  for (let n = 1; n <= leafHashes.length; n++) {
    const tree = leafHashes.slice(0, n);
    const root = rootOf(tree);
    for (let m = 0; m < n; m++) {
      const proof = inclusionProof(tree, m);
      assert.ok(verifyInclusion(tree[m]!, m, n, proof, root), `leaf ${m} of ${n}`);
      assert.equal(verifyInclusion(hashLeaf('forged'), m, n, proof, root), false);
      if (n > 1) assert.equal(verifyInclusion(tree[m]!, (m + 1) % n, n, proof, root), false, `wrong index ${m} of ${n}`);
      if (proof.length > 0) {
        const bad = proof.map((p, i) => (i === 0 ? hashLeaf('x') : p));
        assert.equal(verifyInclusion(tree[m]!, m, n, bad, root), false);
      }
    }
  }
});
