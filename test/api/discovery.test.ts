import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createTestApi } from '../support/api';
import { createCustomer, createDevice, createPartner, createSpace, createUser, type TestUser } from '../support/fixtures';

/**
 * What a client can query: the metric catalogue, and the devices and spaces each caller may see
 * (a customer user their customer's, a partner user their customers', an admin all), as pages
 * with Link headers, with their filters (docs/api.md, "Discovery").
 */

const api = await createTestApi();
const { sql } = api.db;
const p1 = await createPartner(sql);
const p2 = await createPartner(sql);
const c1 = await createCustomer(sql, p1);
const c2 = await createCustomer(sql, p1);
const c3 = await createCustomer(sql, p2);
const alice = await createUser(sql, 'customer', { customerId: c1 });
const partner = await createUser(sql, 'partner', { partnerId: p1 });
const carol = await createUser(sql, 'customer', { customerId: c3 });
const admin = await createUser(sql, 'admin');

const building1 = await createSpace(sql, c1, { name: 'Building one' });
const floor1 = await createSpace(sql, c1, { name: 'Floor 1', parentId: building1 });
const floor2 = await createSpace(sql, c1, { name: 'Floor 2', parentId: building1 });
const building2 = await createSpace(sql, c2, { name: 'Building two' });
const building3 = await createSpace(sql, c3, { name: 'Building three' });

const lampNorth = await createDevice(sql, c1, { spaceId: floor1, name: 'Lamp north' });
const lampSouth = await createDevice(sql, c1, { spaceId: floor2, name: 'Lamp south' });
const meter = await createDevice(sql, c1, { spaceId: building1, name: 'Meter 50%_main' });
const sensor2 = await createDevice(sql, c2, { spaceId: building2, name: 'Sensor two' });
const unplaced = await createDevice(sql, c3, { name: 'Unplaced sensor' });

const get = (user: TestUser | undefined, path: string) => api.request('GET', path, user ? { key: user.apiKey } : {});
const ids = (body: Array<{ id: string }>) => body.map((item) => item.id);

/** Every page of a list, following rel="next" from `limit=size`, with the pages' count. */
async function allPages(user: TestUser, path: string, size: number): Promise<{ items: Array<Record<string, unknown>>; pages: number }> {
  const items: Array<Record<string, unknown>> = [];
  let url: string | undefined = `${path}${path.includes('?') ? '&' : '?'}limit=${size}`;
  let pages = 0;
  while (url) {
    const response = await get(user, url);
    assert.equal(response.status, 200, response.text);
    assert.ok(response.body.length <= size);
    items.push(...response.body);
    pages++;
    const next = /<([^>]+)>; rel="next"/.exec(response.headers.get('link') ?? '');
    url = next ? new URL(next[1]!).pathname + new URL(next[1]!).search : undefined;
    if (pages > 1) assert.match(response.headers.get('link')!, /rel="prev"/);
  }
  return { items, pages };
}

describe('GET /analytics/metrics/', () => {
  test('the catalogue by name, with unit and description, the same for every caller', async () => {
    const response = await get(alice, '/analytics/metrics/');
    assert.equal(response.status, 200);
    assert.deepEqual(
      response.body.map((m: { name: string }) => m.name),
      ['active_power', 'area_head_count', 'energy', 'illuminance', 'occupancy', 'temperature'],
    );
    assert.deepEqual(response.body[0], { name: 'active_power', unit: 'W', description: 'Active electrical power' });
    assert.deepEqual((await get(carol, '/analytics/metrics')).body, response.body, 'without the slash too; same for everyone');
    assert.deepEqual((await get(admin, '/analytics/metrics/')).body, response.body);
  });

  test('paged like every list: limit, offset and Link', async () => {
    const { items, pages } = await allPages(alice, '/analytics/metrics/', 4);
    assert.equal(pages, 2);
    assert.equal(items.length, 6);
    const second = await get(alice, '/analytics/metrics/?limit=2&offset=2');
    assert.deepEqual(
      second.body.map((m: { name: string }) => m.name),
      ['energy', 'illuminance'],
    );
    assert.match(second.headers.get('link')!, /offset=4[^>]*>; rel="next"/);
    assert.match(second.headers.get('link')!, /offset=0[^>]*>; rel="prev"/);
  });

  test('needs an API key; a bad limit is 400 on the field', async () => {
    assert.equal((await get(undefined, '/analytics/metrics/')).status, 401);
    const response = await get(alice, '/analytics/metrics/?limit=0');
    assert.equal(response.status, 400);
    assert.deepEqual(Object.keys(response.body), ['limit']);
  });
});

describe('GET /analytics/devices/', () => {
  const SEES: Array<[string, TestUser, string[]]> = [
    ['a customer user: their customer’s', alice, [lampNorth, lampSouth, meter]],
    ['a partner user: their customers’', partner, [lampNorth, lampSouth, meter, sensor2]],
    ['a customer of another partner: theirs', carol, [unplaced]],
    ['an admin: all', admin, [lampNorth, lampSouth, meter, sensor2, unplaced]],
  ];
  for (const [who, user, visible] of SEES) {
    test(who, async () => {
      const response = await get(user, '/analytics/devices/');
      assert.equal(response.status, 200);
      assert.deepEqual(ids(response.body), visible, 'by name');
    });
  }

  test('id, name, space and customer', async () => {
    const response = await get(partner, '/analytics/devices');
    assert.deepEqual(response.body[0], { id: lampNorth, name: 'Lamp north', space: floor1, customer: c1 });
    const admins = await get(admin, '/analytics/devices/?name__contains=unplaced');
    assert.deepEqual(admins.body, [{ id: unplaced, name: 'Unplaced sensor', space: null, customer: c3 }]);
  });

  test('space: the devices placed directly in it, among those the caller sees', async () => {
    assert.deepEqual(ids((await get(alice, `/analytics/devices/?space=${floor1}`)).body), [lampNorth]);
    assert.deepEqual(ids((await get(alice, `/analytics/devices/?space=${building1}`)).body), [meter], 'not those of its floors');
    assert.deepEqual((await get(alice, `/analytics/devices/?space=${building2}`)).body, [], 'another customer’s space');
    assert.deepEqual(ids((await get(partner, `/analytics/devices/?space=${building2}`)).body), [sensor2]);
  });

  test('name__contains: case-insensitive, % and _ literal', async () => {
    assert.deepEqual(ids((await get(alice, '/analytics/devices/?name__contains=LAMP')).body), [lampNorth, lampSouth]);
    assert.deepEqual(ids((await get(alice, '/analytics/devices/?name__contains=50%25_')).body), [meter]);
    assert.deepEqual((await get(alice, '/analytics/devices/?name__contains=%25')).body.length, 1);
    assert.deepEqual((await get(carol, '/analytics/devices/?name__contains=lamp')).body, []);
  });

  test('filters combine; a malformed space is 400 on the field', async () => {
    assert.deepEqual(ids((await get(alice, `/analytics/devices/?space=${floor2}&name__contains=lamp`)).body), [lampSouth]);
    const response = await get(alice, '/analytics/devices/?space=building-1');
    assert.equal(response.status, 400);
    assert.deepEqual(response.body, { space: ['Must be a valid UUID.'] });
  });

  test('paged: every device once, in order, over Link headers', async () => {
    const { items, pages } = await allPages(admin, '/analytics/devices/', 2);
    assert.equal(pages, 3);
    assert.deepEqual(ids(items as Array<{ id: string }>), [lampNorth, lampSouth, meter, sensor2, unplaced]);
    const filtered = await allPages(partner, '/analytics/devices/?name__contains=lamp', 1);
    assert.deepEqual(ids(filtered.items as Array<{ id: string }>), [lampNorth, lampSouth], 'filters kept in the links');
  });
});

describe('GET /analytics/spaces/', () => {
  const SEES: Array<[string, TestUser, string[]]> = [
    ['a customer user: their customer’s', alice, [building1, floor1, floor2]],
    ['a partner user: their customers’', partner, [building1, building2, floor1, floor2]],
    ['a customer of another partner: theirs', carol, [building3]],
    ['an admin: all', admin, [building1, building3, building2, floor1, floor2]],
  ];
  for (const [who, user, visible] of SEES) {
    test(who, async () => {
      const response = await get(user, '/analytics/spaces/');
      assert.equal(response.status, 200);
      assert.deepEqual(ids(response.body), visible, 'by name');
    });
  }

  test('id, name, parent and customer', async () => {
    const response = await get(alice, '/analytics/spaces');
    assert.deepEqual(response.body[0], { id: building1, name: 'Building one', parent: null, customer: c1 });
    assert.deepEqual(response.body[1], { id: floor1, name: 'Floor 1', parent: building1, customer: c1 });
  });

  test('parent: its direct children; parent=null: the spaces that are part of none', async () => {
    assert.deepEqual(ids((await get(alice, `/analytics/spaces/?parent=${building1}`)).body), [floor1, floor2]);
    assert.deepEqual(ids((await get(alice, `/analytics/spaces/?parent=${floor1}`)).body), []);
    assert.deepEqual(ids((await get(partner, '/analytics/spaces/?parent=null')).body), [building1, building2]);
    assert.deepEqual((await get(carol, `/analytics/spaces/?parent=${building1}`)).body, [], 'another customer’s space');
    const response = await get(alice, '/analytics/spaces/?parent=root');
    assert.equal(response.status, 400);
    assert.deepEqual(Object.keys(response.body), ['parent']);
  });

  test('paged: every space once, in order, over Link headers', async () => {
    const { items, pages } = await allPages(admin, '/analytics/spaces/', 2);
    assert.equal(pages, 3);
    assert.deepEqual(ids(items as Array<{ id: string }>), [building1, building3, building2, floor1, floor2]);
  });
});
