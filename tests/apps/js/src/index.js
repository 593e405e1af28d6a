// A Spin app from the JavaScript SDK's build tools: itty-router's routes over the fetch event,
// Spin's key-value store and variables, and outbound fetch to a URL the test names.
import { AutoRouter } from 'itty-router';
import { Store } from 'fermyon:spin/key-value@2.0.0';
import { get } from 'fermyon:spin/variables@2.0.0';

const router = AutoRouter();
router
  .get('/js/hello/:name', ({ params }) => new Response(`Hello, ${params.name}, from JavaScript!\n`))
  .get('/js/greeting', () => new Response(`${get('greeting')}\n`))
  .get('/js/count', () => {
    const store = Store.open('default');
    const seen = store.get('count');
    const count = (seen ? Number(new TextDecoder().decode(seen)) : 0) + 1;
    store.set('count', new TextEncoder().encode(String(count)));
    return new Response(`count: ${count}\n`);
  })
  .get('/js/outbound', async (request) => {
    const target = new URL(request.url).searchParams.get('url');
    try {
      const answer = await fetch(target);
      return new Response(`${answer.status}: ${await answer.text()}`);
    } catch (error) {
      return new Response(`error: ${error}\n`);
    }
  });

addEventListener('fetch', (event) => event.respondWith(router.fetch(event.request)));
