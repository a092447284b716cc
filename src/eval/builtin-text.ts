/**
 * The built-in evaluation text: plain English written for this project (no licence strings
 * attached), shipped inside the app and the CLI so the quality check works offline — for the
 * demo models, dropped folders, and whenever the Hub cannot be reached. It is not used to
 * calibrate anything (no calibration text is shared with it), so its figures are a fair held-out
 * measurement. Simple sentences, so that small story models score it meaningfully too.
 */
export const BUILTIN_TEXT_LABEL = 'built-in evaluation text (QuaRot Studio, offline)';

export const BUILTIN_TEXT = `The village at the edge of the river woke early. Before the sun was over the hills, the baker had lit his oven, and the smell of warm bread drifted down the lane. A girl named Mira walked past with a basket of eggs. She stopped at the bakery window, looked at the round loaves, and smiled. "One more week," she said to herself, "and I will have saved enough for the big one."

Her brother Tam was still asleep. He had stayed up late the night before, watching the stars from the roof of the barn. He liked to count them, even though he always lost his place after two hundred. When Mira came home, she shook his shoulder and told him that the goats had escaped again. Tam jumped out of bed, pulled on his boots, and ran outside without his coat.

The goats were in the garden. They had eaten half of the cabbages and were starting on the beans. Tam waved his arms and shouted, but the goats only looked at him and kept chewing. Then Mira had an idea. She went into the kitchen, came back with a bucket of apples, and shook it. The goats lifted their heads at once. One by one, they followed her back to the field, and Tam closed the gate behind them.

"You have to fix that gate," Mira said.
"I know," said Tam. "I will do it after breakfast."
"You said that yesterday."
Tam laughed, because it was true.

After breakfast, their grandmother asked them to take a letter to the post office in the next town. It was a long walk, about an hour each way, along the river path and over the old stone bridge. Mira carried the letter in her pocket, and Tam carried a bag with bread, cheese and two apples that the goats had not found. The morning was cool and bright. Birds sang in the trees, and the river was high from the rain of the week before.

At the bridge, they met an old man with a fishing rod. He told them that he had been fishing at the same spot for forty years and had caught a fish only twice. "Then why do you keep coming?" Tam asked. The old man thought about it for a while. "Because the river is a good place to think," he said, "and the fish are a good excuse."

The post office was a small building with a red door and a bell that rang when you opened it. The woman behind the counter weighed the letter, put a stamp on it, and asked where it was going. Mira read the address aloud. It was going to a city by the sea, where their aunt lived. The woman said that the letter would arrive in three days, if the trains were on time, and four if they were not.

On the way home, the sky grew dark. A strong wind came down from the hills, and the first drops of rain began to fall. Mira and Tam ran the last part of the path and reached the house just as the storm began. Their grandmother had a fire going in the stove. She gave them dry clothes and two cups of hot milk with honey, and they sat by the window to watch the rain.

"Tell us a story," Tam said.
Their grandmother put down her knitting. "Which one?"
"The one about the lighthouse."

So she told them about the lighthouse keeper who lived alone on a rock in the sea. Every night he climbed the stairs to light the lamp, so that the ships would not crash on the rocks. One winter, a great storm broke the lamp. The keeper had no way to fix it, and a ship was coming. He took every candle he owned, every lantern and every oil lamp, and set them all in the window at the top of the tower. The light was small, but it was enough. The captain of the ship saw it and turned away from the rocks just in time.

"Was he a real person?" Mira asked.
"He was my grandfather," said their grandmother. "And that is why we keep a candle in the window when there is a storm."

The rain stopped in the evening. The air smelled of wet grass and earth. Tam went out to the field with a hammer and a box of nails, and this time he fixed the gate. It took him longer than he expected, because one of the posts was loose and he had to dig a new hole for it. When he was done, he pushed the gate three times to be sure it would hold. The goats watched him from under the tree, looking disappointed.

That night, Mira counted the coins in her jar. She had saved a little from every egg she had sold since the spring. There was enough now, with two coins left over. In the morning she would buy the biggest loaf in the bakery window, and she would share it with everyone: her brother, her grandmother, the old man at the bridge, and maybe even the goats.

A machine that learns to write does not read the way a child does. It breaks the words into small pieces and learns which piece tends to follow which. When it has seen enough text, it can guess the next piece well, and a good guess is what we measure. If the machine is made smaller, by storing each of its numbers with fewer bits, its guesses change a little. A careful method keeps those changes small, so that the smaller machine still writes nearly the same words as the large one.

To check this, we give both machines the same text and ask each one how surprised it is by every next piece. The average surprise, turned into a number called perplexity, tells us how well each machine knows the text. We also compare their guesses directly: how often they pick the same most likely piece, and how far apart their whole lists of guesses are. When the numbers for the small machine are close to those for the large one, the method has done its job.

In the autumn, the leaves on the hill turned yellow and red, and the river ran slower and clearer. The baker began to make bread with nuts and dried fruit, and the smell of it filled the lane again. Mira bought a small loaf every Saturday, and Tam learned to count the stars all the way to five hundred without losing his place. The gate held all winter. The goats, at last, stayed in their field.`;
